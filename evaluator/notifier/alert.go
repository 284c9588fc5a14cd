package notifier

import (
	"encoding/json"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// Alert is one alert as the Alertmanager receives it. A resolved alert
// has an EndsAt in the past; a firing one an EndsAt in the future (its
// validity), after which the Alertmanager resolves it by itself.
type Alert struct {
	Labels       labels.Labels
	Annotations  labels.Labels
	StartsAt     time.Time
	EndsAt       time.Time
	GeneratorURL string
}

// postableAlert is Alertmanager API v2's PostableAlert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// encodeBatch renders alerts as the body of POST /api/v2/alerts.
func encodeBatch(alerts []*Alert) ([]byte, error) {
	out := make([]postableAlert, len(alerts))
	for i, a := range alerts {
		out[i] = postableAlert{
			Labels: a.Labels.Map(), Annotations: a.Annotations.Map(),
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL,
		}
	}
	return json.Marshal(out)
}
