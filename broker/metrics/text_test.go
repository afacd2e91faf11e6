package metrics

import "testing"

// TestWriterFormat: families in the text exposition format, with help
// text and label values escaped as the format asks.
func TestWriterFormat(t *testing.T) {
	var w Writer
	w.Counter("tether_things_total", "Things\\done\nsince start.", Labelled("outcome", `a"b\c`+"\n", 3), Labelled("outcome", "ok", 0))
	w.Gauge("tether_now", "Now.", Value(1.5))
	w.Gauge("tether_big", "Big.", Value(1722334455.5), Sample{Labels: []Label{{"a", "x"}, {"b", "y"}}, Value: 1})
	want := `# HELP tether_things_total Things\\done\nsince start.
# TYPE tether_things_total counter
tether_things_total{outcome="a\"b\\c\n"} 3
tether_things_total{outcome="ok"} 0
# HELP tether_now Now.
# TYPE tether_now gauge
tether_now 1.5
# HELP tether_big Big.
# TYPE tether_big gauge
tether_big 1.7223344555e+09
tether_big{a="x",b="y"} 1
`
	if got := string(w.Bytes()); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
