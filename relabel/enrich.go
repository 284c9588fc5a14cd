package relabel

import "github.com/prometheus/prometheus/model/labels"

// enrich stamps the registry's labels on a series of a known cluster
// (rec != nil), or the defaults on one of an unknown cluster. Size is
// always set: declared by the registry, else derived from measured
// figures, else the default. Labels the series already carries win unless
// the record says override.
func enrich(lb *labels.Builder, rec *Record, derived string, defaults map[string]string) {
	set := func(n, v string, override bool) {
		if v != "" && (override || lb.Get(n) == "") {
			lb.Set(n, v)
		}
	}
	if rec == nil {
		for n, v := range defaults {
			if n != "size" {
				set(n, v, false)
			}
		}
		set("size", sizeOf("", derived, defaults), false)
		return
	}
	for n, v := range rec.labels() {
		if n != "size" {
			set(n, v, rec.Override)
		}
	}
	set("size", sizeOf(rec.Size, derived, defaults), rec.Override && rec.Size != "")
}

// sizeOf picks the size: declared wins over derived, derived over default.
func sizeOf(declared, derived string, defaults map[string]string) string {
	switch {
	case declared != "":
		return declared
	case derived != "":
		return derived
	}
	return defaults["size"]
}
