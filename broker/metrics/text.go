// Package metrics serves the broker's metrics at /metrics in the
// Prometheus text exposition format, version 0.0.4: what an operator
// graphs and alerts on (live sessions and connections, sessions begun and
// ended, sign-in failures, webhook deliveries, recordings) and the
// process's basics. The format is written by hand: it is a few lines, and
// a client library would add dependencies for no more than that.
//
// Label values come from small fixed sets; no session id, ticket, user
// name or code is ever one.
package metrics

import (
	"bytes"
	"strconv"
	"strings"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Label is a label of a sample.
type Label struct{ Name, Value string }

// Sample is one value of a metric, with its labels.
type Sample struct {
	Labels []Label
	Value  float64
}

// Value is a sample without labels.
func Value(v float64) Sample { return Sample{Value: v} }

// Labelled is a sample with one label.
func Labelled(name, value string, v float64) Sample {
	return Sample{Labels: []Label{{name, value}}, Value: v}
}

// Writer puts metric families together in the text format.
type Writer struct{ buf bytes.Buffer }

// Counter writes a counter: name ends in _total.
func (w *Writer) Counter(name, help string, samples ...Sample) {
	w.family(name, "counter", help, samples)
}

// Gauge writes a gauge.
func (w *Writer) Gauge(name, help string, samples ...Sample) {
	w.family(name, "gauge", help, samples)
}

func (w *Writer) family(name, typ, help string, samples []Sample) {
	w.buf.WriteString("# HELP " + name + " " + helpEscaper.Replace(help) + "\n")
	w.buf.WriteString("# TYPE " + name + " " + typ + "\n")
	for _, s := range samples {
		w.buf.WriteString(name)
		if len(s.Labels) > 0 {
			w.buf.WriteByte('{')
			for i, l := range s.Labels {
				if i > 0 {
					w.buf.WriteByte(',')
				}
				w.buf.WriteString(l.Name + `="` + labelEscaper.Replace(l.Value) + `"`)
			}
			w.buf.WriteByte('}')
		}
		w.buf.WriteByte(' ')
		w.buf.WriteString(strconv.FormatFloat(s.Value, 'g', -1, 64))
		w.buf.WriteByte('\n')
	}
}

// Bytes returns what was written.
func (w *Writer) Bytes() []byte { return w.buf.Bytes() }

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)
