package serve

import (
	"bufio"
	"io"
	"strings"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, name, data string
}

// maxSSELine bounds one line of an event stream: a log line's JSON.
const maxSSELine = 4 << 20

// readEvents calls f with each event of an event stream until it ends
// or f returns false. Comments are skipped; an event without a name is
// "message".
func readEvents(r io.Reader, f func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				ev.data = strings.Join(data, "\n")
				if ev.name == "" {
					ev.name = "message"
				}
				if !f(ev) {
					return nil
				}
			}
			ev, data = sseEvent{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.name = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}
