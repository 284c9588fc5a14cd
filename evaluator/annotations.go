package evaluator

// Annotation is a warning or an info note attached to a result, like
// Prometheus's annotations: the query succeeded but its answer may not
// mean what the user thinks.
type Annotation struct {
	Info bool // an info note rather than a warning
	Msg  string
}

// Annotations collects a query's annotations without duplicates.
type Annotations []Annotation

func (a *Annotations) add(info bool, msg string) {
	for _, x := range *a {
		if x.Info == info && x.Msg == msg {
			return
		}
	}
	*a = append(*a, Annotation{Info: info, Msg: msg})
}

// Strings returns the messages, warnings first, as the API's warnings and
// infos fields want them.
func (a Annotations) Strings() (warnings, infos []string) {
	for _, x := range a {
		if x.Info {
			infos = append(infos, x.Msg)
		} else {
			warnings = append(warnings, x.Msg)
		}
	}
	return warnings, infos
}
