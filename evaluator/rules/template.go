package rules

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"text/template"
	"unicode"

	"github.com/prometheus/common/helpers/templates"
)

// templateData is what alert label and annotation templates see, under
// the variables Prometheus defines: $labels, $externalLabels,
// $externalURL and $value.
type templateData struct {
	Labels         map[string]string
	ExternalLabels map[string]string
	ExternalURL    string
	Value          float64
}

const templatePrefix = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}" +
	"{{$externalURL := .ExternalURL}}{{$value := .Value}}"

// templateFuncs are Prometheus's template functions that need no query
// (query, first, label, value and sortByLabel are not offered: a template
// that uses them fails validation).
var templateFuncs = template.FuncMap{
	"humanize":           humanize,
	"humanize1024":       humanize1024,
	"humanizeDuration":   templates.HumanizeDuration,
	"humanizePercentage": humanizePercentage,
	"humanizeTimestamp":  templates.HumanizeTimestamp,
	"toUpper":            strings.ToUpper,
	"toLower":            strings.ToLower,
	"title":              title,
	"match":              regexp.MatchString,
	"reReplaceAll": func(pattern, repl, text string) string {
		return regexp.MustCompile(pattern).ReplaceAllString(text, repl)
	},
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(templateFuncs).Option("missingkey=zero").Parse(templatePrefix + text)
}

// expandTemplate renders text for one alert. A failing template yields its
// error as the text, as Prometheus does, so the alert still goes out.
func expandTemplate(name, text string, data templateData) string {
	if !strings.Contains(text, "{{") {
		return text
	}
	tmpl, err := parseTemplate(name, text)
	if err != nil {
		return fmt.Sprintf("<error expanding template: %v>", err)
	}
	var sb strings.Builder
	if err := tmpl.Execute(&sb, data); err != nil {
		return fmt.Sprintf("<error expanding template: %v>", err)
	}
	return sb.String()
}

// humanize renders v with an SI prefix ("1.5k", "250m"), as Prometheus's
// humanize does.
func humanize(i any) (string, error) {
	v, err := templates.ConvertToFloat(i)
	if err != nil {
		return "", err
	}
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v), nil
	}
	prefix := ""
	if math.Abs(v) >= 1 {
		for _, p := range []string{"k", "M", "G", "T", "P", "E", "Z", "Y"} {
			if math.Abs(v) < 1000 {
				break
			}
			prefix, v = p, v/1000
		}
		return fmt.Sprintf("%.4g%s", v, prefix), nil
	}
	for _, p := range []string{"m", "u", "n", "p", "f", "a", "z", "y"} {
		if math.Abs(v) >= 1 {
			break
		}
		prefix, v = p, v*1000
	}
	return fmt.Sprintf("%.4g%s", v, prefix), nil
}

// humanize1024 renders v with a binary prefix ("1.5Gi").
func humanize1024(i any) (string, error) {
	v, err := templates.ConvertToFloat(i)
	if err != nil {
		return "", err
	}
	if math.Abs(v) <= 1 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%.4g", v), nil
	}
	prefix := ""
	for _, p := range []string{"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"} {
		if math.Abs(v) < 1024 {
			break
		}
		prefix, v = p, v/1024
	}
	return fmt.Sprintf("%.4g%s", v, prefix), nil
}

func humanizePercentage(i any) (string, error) {
	v, err := templates.ConvertToFloat(i)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%.4g%%", v*100), nil
}

// title upper-cases the first letter of every word, as Prometheus's
// title does for the ASCII and Latin text of alert templates.
func title(s string) string {
	prev := ' '
	return strings.Map(func(r rune) rune {
		defer func() { prev = r }()
		if !unicode.IsLetter(prev) && !unicode.IsDigit(prev) && prev != '\'' {
			return unicode.ToTitle(r)
		}
		return r
	}, s)
}
