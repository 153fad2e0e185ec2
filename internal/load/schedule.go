package load

import (
	"math"
	"time"
)

// schedule yields the intended start times of an open-model test: arrivals
// follow a piecewise-linear rate (constant rate is one flat stage), and
// arrival i happens when the integral of the rate reaches i.
type schedule struct {
	stages []rampStage
	i      float64 // next arrival number
	k      int     // current stage
}

type rampStage struct {
	from, to float64 // requests per second
	dur      float64 // seconds
	offset   float64 // start of the stage, seconds
	before   float64 // arrivals before the stage
}

func newSchedule(startRate float64, stages []Stage) *schedule {
	s := &schedule{}
	from, off, before := startRate, 0.0, 0.0
	for _, st := range stages {
		d := st.Duration.Seconds()
		s.stages = append(s.stages, rampStage{from: from, to: st.Target, dur: d, offset: off, before: before})
		before += (from + st.Target) / 2 * d
		off += d
		from = st.Target
	}
	return s
}

// next returns the offset of the next arrival from the start, or false when
// the schedule is over.
func (s *schedule) next() (time.Duration, bool) {
	for s.k < len(s.stages) {
		st := s.stages[s.k]
		x := s.i - st.before
		total := (st.from + st.to) / 2 * st.dur
		if x >= total {
			s.k++
			continue
		}
		a := (st.to - st.from) / (2 * st.dur)
		b := st.from
		// Solve a t² + b t = x for t in [0, dur], stably for any sign of a.
		disc := b*b + 4*a*x
		if disc < 0 {
			disc = 0
		}
		den := b + math.Sqrt(disc)
		t := 0.0
		if den > 0 {
			t = 2 * x / den
		}
		s.i++
		return time.Duration((st.offset + t) * float64(time.Second)), true
	}
	return 0, false
}

// peakRate is the highest rate the schedule reaches.
func peakRate(startRate float64, stages []Stage) float64 {
	p := startRate
	for _, st := range stages {
		p = max(p, st.Target)
	}
	return p
}
