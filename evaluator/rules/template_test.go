package rules

import "testing"

func TestExpandTemplate(t *testing.T) {
	data := templateData{
		Labels: map[string]string{"cluster": "etcd-pay-1", "instance": "m1"}, ExternalLabels: map[string]string{"region": "eu"},
		ExternalURL: "http://etcdgate", Value: 1234567,
	}
	f := func(text, want string) {
		t.Helper()
		if got := expandTemplate("t", text, data); got != want {
			t.Errorf("%s: got %q, want %q", text, got, want)
		}
	}
	f("plain text", "plain text")
	f("{{ $labels.cluster }} in {{ $externalLabels.region }}", "etcd-pay-1 in eu")
	f("{{ $value }}", "1.234567e+06")
	f("{{ $value | humanize }}", "1.235M")
	f("{{ 0.00025 | humanize }}", "250u")
	f("{{ 2147483648 | humanize1024 }}", "2Gi")
	f("{{ 3725 | humanizeDuration }}", "1h 2m 5s")
	f("{{ 0.0525 | humanizePercentage }}", "5.25%")
	f("{{ 1700000000 | humanizeTimestamp }}", "2023-11-14 22:13:20 +0000 UTC")
	f(`{{ "etcd no-leader" | title }}`, "Etcd No-Leader")
	f(`{{ $labels.cluster | toUpper }}`, "ETCD-PAY-1")
	f(`{{ reReplaceAll "-[0-9]+$" "" $labels.cluster }}`, "etcd-pay")
	f(`{{ if match "^etcd" $labels.cluster }}yes{{ end }}`, "yes")
	f(`{{ $labels.missing }}`, "")
	f(`{{ "x" | humanize }}`, `<error expanding template: template: t:1:121: executing "t" at <humanize>: error calling humanize: strconv.ParseFloat: parsing "x": invalid syntax>`)
}
