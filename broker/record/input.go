package record

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/tether-support/tether/internal/protocol"
)

// inputSummary counts one viewer's input during one second: what the
// timeline needs to show bursts, without the content of any key.
type inputSummary struct {
	second  time.Time
	first   time.Time // the timeline places the summary at its first input
	moves   int
	clicks  int
	wheels  int
	keys    int
	text    int
	release int
}

func (s *Session) countInput(at time.Time, viewer string, kind byte) {
	sec := at.Truncate(time.Second)
	sum := s.inputs[viewer]
	if sum != nil && !sum.second.Equal(sec) {
		s.writeInput(viewer, sum)
		sum = nil
	}
	if sum == nil {
		sum = &inputSummary{second: sec, first: at}
		s.inputs[viewer] = sum
	}
	switch kind {
	case protocol.InputMove:
		sum.moves++
	case protocol.InputButton:
		sum.clicks++
	case protocol.InputWheel:
		sum.wheels++
	case protocol.InputKey:
		sum.keys++
	case protocol.InputText:
		sum.text++
	case protocol.InputReleaseAll:
		sum.release++
	}
}

// flushInputs writes the summaries of seconds that are over (all of them
// when final).
func (s *Session) flushInputs(final bool) {
	now := s.r.cfg.Now().Truncate(time.Second)
	viewers := make([]string, 0, len(s.inputs))
	for v := range s.inputs {
		viewers = append(viewers, v)
	}
	sort.Strings(viewers)
	for _, v := range viewers {
		sum := s.inputs[v]
		if final || sum.second.Before(now) {
			s.writeInput(v, sum)
		}
	}
}

func (s *Session) writeInput(viewer string, sum *inputSummary) {
	delete(s.inputs, viewer)
	if s.failed != nil {
		return
	}
	detail, _ := json.Marshal(map[string]any{"viewer": viewer, "second": sum.second.UTC(), "moves": sum.moves, "clicks": sum.clicks,
		"wheels": sum.wheels, "keys": sum.keys, "text": sum.text,
		"total": sum.moves + sum.clicks + sum.wheels + sum.keys + sum.text})
	if err := s.appendEvent(sum.first, Event{Type: "input", Actor: viewer, Detail: detail}); err != nil {
		s.fail(err)
	}
}
