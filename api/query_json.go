package api

import (
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/etcdgate/etcdgate/evaluator"
)

// writeQueryResult writes a query result in the Prometheus API's JSON
// shape. It appends the JSON by hand: a range query over many series is
// millions of points, and reflection-based encoding would cost more than
// evaluating them.
func writeQueryResult(w http.ResponseWriter, res *evaluator.Result, stats bool) {
	b := make([]byte, 0, 4096)
	b = append(b, `{"status":"success","data":{"resultType":"`...)
	b = append(b, res.Value.Type()...)
	b = append(b, `","result":`...)
	b = appendValue(b, res.Value)
	if stats {
		b = appendStats(b, &res.Stats)
	}
	b = append(b, '}')
	warnings, infos := res.Warnings.Strings()
	b = appendStrings(b, "warnings", warnings)
	b = appendStrings(b, "infos", infos)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func appendValue(b []byte, v evaluator.Value) []byte {
	switch v := v.(type) {
	case evaluator.Vector:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabels(b, s.Metric)
			b = append(b, `,"value":`...)
			b = appendPoint(b, s.T, s.F)
			b = append(b, '}')
		}
		return append(b, ']')
	case evaluator.Matrix:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"metric":`...)
			b = appendLabels(b, s.Metric)
			b = append(b, `,"values":[`...)
			for k, p := range s.Floats {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendPoint(b, p.T, p.F)
			}
			b = append(b, "]}"...)
		}
		return append(b, ']')
	case evaluator.Scalar:
		return appendPoint(b, v.T, v.V)
	case evaluator.String:
		b = append(b, '[')
		b = appendTime(b, v.T)
		b = append(b, ',')
		b = appendJSONString(b, v.V)
		return append(b, ']')
	}
	return append(b, "null"...)
}

// appendPoint writes [seconds, "value"] as Prometheus does.
func appendPoint(b []byte, t int64, f float64) []byte {
	b = append(b, '[')
	b = appendTime(b, t)
	b = append(b, ',', '"')
	b = appendFloat(b, f)
	return append(b, '"', ']')
}

func appendTime(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if ms := t % 1000; ms != 0 {
		b = append(b, '.')
		if ms < 100 {
			b = append(b, '0')
		}
		if ms < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, ms, 10)
	}
	return b
}

func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

func appendLabels(b []byte, lset labels.Labels) []byte {
	b = append(b, '{')
	first := true
	lset.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, l.Name)
		b = append(b, ':')
		b = appendJSONString(b, l.Value)
	})
	return append(b, '}')
}

func appendStrings(b []byte, field string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, field...)
	b = append(b, `":[`...)
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// appendStats writes the stats object of a query in Prometheus's shape
// (util/stats: timings in seconds, samples), per-step counts included
// when the query counted them.
func appendStats(b []byte, st *evaluator.Stats) []byte {
	b = append(b, `,"stats":{"timings":{"evalTotalTime":`...)
	b = appendSeconds(b, st.EvalTime+st.ResultTime)
	b = append(b, `,"resultSortTime":`...)
	b = appendSeconds(b, st.ResultTime)
	b = append(b, `,"queryPreparationTime":`...)
	b = appendSeconds(b, st.PrepareTime)
	b = append(b, `,"innerEvalTime":`...)
	b = appendSeconds(b, st.EvalTime)
	b = append(b, `,"execQueueTime":`...)
	b = appendSeconds(b, st.QueueTime)
	b = append(b, `,"execTotalTime":`...)
	b = appendSeconds(b, st.TotalTime)
	b = append(b, `},"samples":{`...)
	if st.PerStep != nil {
		b = appendStepSamples(b, "totalQueryableSamplesPerStep", st.PerStep)
		b = append(b, ',')
	}
	b = append(b, `"totalQueryableSamples":`...)
	b = strconv.AppendInt(b, st.QueryableSamples, 10)
	if st.ReadPerStep != nil {
		b = append(b, ',')
		b = appendStepSamples(b, "samplesReadPerStep", st.ReadPerStep)
	}
	b = append(b, `,"samplesRead":`...)
	b = strconv.AppendInt(b, st.SamplesRead, 10)
	b = append(b, `,"seriesTouched":`...)
	b = strconv.AppendInt(b, st.SeriesLoaded, 10)
	b = append(b, `,"peakSamples":`...)
	b = strconv.AppendInt(b, st.PeakSamples, 10)
	return append(b, "}}"...)
}

func appendSeconds(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, d.Seconds(), 'g', -1, 64)
}

// appendStepSamples writes "field":[[time, samples], ...].
func appendStepSamples(b []byte, field string, steps []evaluator.StepSamples) []byte {
	b = append(b, '"')
	b = append(b, field...)
	b = append(b, `":[`...)
	for i, p := range steps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendTime(b, p.T)
		b = append(b, ',')
		b = strconv.AppendInt(b, p.N, 10)
		b = append(b, ']')
	}
	return append(b, ']')
}
