package load

import (
	"math"
	"slices"
)

// Trend test used by the soak watch: the Theil–Sen estimator gives a robust
// slope (the median of all pairwise slopes, insensitive to GC sawtooth and
// outliers) and the Mann–Kendall test tells whether a monotonic upward trend
// is significant, rather than comparing one sample before with one after.

// maxTrendPoints bounds the O(n²) work; longer series are thinned evenly.
const maxTrendPoints = 1500

// TrendFit is the outcome of the trend test on one series.
type TrendFit struct {
	// Slope is the Theil–Sen slope in units per second; Intercept is the
	// line's value at the first sample's time.
	Slope     float64 `json:"slope_per_s"`
	Intercept float64 `json:"intercept"`
	// Z is the Mann–Kendall statistic; P the one-sided p-value of an
	// upward trend.
	Z float64 `json:"z"`
	P float64 `json:"p_value"`
	// Median of the values.
	Median float64 `json:"median"`
	N      int     `json:"n"`
}

func fitTrend(ts, vs []float64) TrendFit {
	ts, vs = thin(ts, vs)
	n := len(vs)
	f := TrendFit{N: n, P: 1}
	if n < 3 {
		return f
	}
	slopes := make([]float64, 0, n*(n-1)/2)
	s := 0.0
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			d := vs[j] - vs[i]
			switch {
			case d > 0:
				s++
			case d < 0:
				s--
			}
			if dt := ts[j] - ts[i]; dt > 0 {
				slopes = append(slopes, d/dt)
			}
		}
	}
	f.Slope = median(slopes)
	f.Median = median(append([]float64(nil), vs...))
	icpt := make([]float64, n)
	for i := range vs {
		icpt[i] = vs[i] - f.Slope*(ts[i]-ts[0])
	}
	f.Intercept = median(icpt)

	// Variance of S with the correction for tied values.
	nf := float64(n)
	varS := nf * (nf - 1) * (2*nf + 5)
	sorted := append([]float64(nil), vs...)
	slices.Sort(sorted)
	for i := 0; i < n; {
		j := i
		for j < n && sorted[j] == sorted[i] {
			j++
		}
		if t := float64(j - i); t > 1 {
			varS -= t * (t - 1) * (2*t + 5)
		}
		i = j
	}
	varS /= 18
	if varS <= 0 {
		return f
	}
	switch {
	case s > 0:
		f.Z = (s - 1) / math.Sqrt(varS)
	case s < 0:
		f.Z = (s + 1) / math.Sqrt(varS)
	}
	f.P = 0.5 * math.Erfc(f.Z/math.Sqrt2)
	return f
}

func thin(ts, vs []float64) ([]float64, []float64) {
	if len(vs) <= maxTrendPoints {
		return ts, vs
	}
	step := float64(len(vs)) / maxTrendPoints
	var t2, v2 []float64
	for x := 0.0; int(x) < len(vs); x += step {
		t2 = append(t2, ts[int(x)])
		v2 = append(v2, vs[int(x)])
	}
	return t2, v2
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}
