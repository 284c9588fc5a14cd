package evaluator

import "math"

// Incremental least squares for deriv and predict_linear over sliding
// windows. A range query's consecutive windows of one series share most
// of their points, so linState keeps the window's sums (of x, y, x·y and
// x², x in milliseconds from a reference time near the window) and moves
// them with the window: one add per new point and one subtract per point
// that left, instead of a refit of the whole window at every step.
//
// Numerics: the sums are double-doubles (about 106 bits) and every term
// is exact (x is an integer of milliseconds, x·y and x² split by FMA into
// two floats that sum to the exact product), so adding and subtracting
// loses only about 2^-106 of the largest partial sum per operation. The
// state is rebuilt from the window's points once it has done as many
// operations as the window holds points, which keeps the reference time
// near the window and the accumulated error bounded; an error bound is
// checked at every fit, with a rebuild when it is not small against the
// centred sums. Windows with a value that is not finite (or so large that
// a product could overflow) take the direct fit, linearRegression.
//
// Prometheus fits with single floats and Kahan sums, whose centring
// cancels when the window is far from its intercept time or the values
// hardly vary against their size: where its own result could be off by
// more than ~1e-11 (estimated from the exact centred sums), the direct
// fit runs instead, which computes exactly as Prometheus does.

// maxIncrementalValue bounds |y| for the incremental path: x·y and its
// sums stay finite (|x| < 2^54 ms).
const maxIncrementalValue = 1e280

// maxPromFitError is the largest error of Prometheus's fit, relative to
// its result, at which the incremental fit (far more exact) is used; it
// is 100 times below the tolerance the differential tests compare with.
const maxPromFitError = 1e-11

// dd is a double-double: the unevaluated sum hi+lo, |lo| ≤ ulp(hi)/2.
type dd struct{ hi, lo float64 }

// twoSum returns a+b rounded and its exact rounding error.
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	return s, (a - (s - bb)) + (b - bb)
}

// addTerm returns d + (x + xe), where x + xe is an exact term.
func (d dd) addTerm(x, xe float64) dd {
	s, e := twoSum(d.hi, x)
	e += d.lo + xe
	hi := s + e
	return dd{hi, e - (hi - s)}
}

// addProd returns d + sign·a·b, the product exact.
func (d dd) addProd(a, b, sign float64) dd {
	p := a * b
	return d.addTerm(sign*p, sign*math.FMA(a, b, -p))
}

// divN returns d/n as a double-double.
func (d dd) divN(n float64) dd {
	q := d.hi / n
	r := math.FMA(-q, n, d.hi) + d.lo
	q2 := r / n
	hi := q + q2
	return dd{hi, q2 - (hi - q)}
}

// mulSubFrom returns c - a·b, rounded once more to a float.
func mulSubFrom(c, a, b dd) float64 {
	p := a.hi * b.hi
	pe := math.FMA(a.hi, b.hi, -p) + (a.hi*b.lo + a.lo*b.hi)
	return (c.hi - p) + (c.lo - pe)
}

// linState is the sliding fit of one series: the sums of its points
// [lo, hi) that are finite and not huge, with x = T - ref.
type linState struct {
	valid          bool
	lo, hi         int
	ref            int64
	n              int // points in the sums
	wild           int // points of [lo, hi) left out of the sums
	sx, sy         dd
	sxy, sxx       dd
	absY, absXY    float64 // Σ|y|, Σ|x·y| over every operation since the rebuild: bounds any partial sum
	absX, absXX    float64
	ops            int // adds and subtracts since the rebuild
	lastChange     int // last index i ≥ 1 added whose value differs from point i-1's
	changeComputed int // points up to this index have been checked for changes
}

func isWild(f float64) bool { return !(math.Abs(f) <= maxIncrementalValue) }

// apply adds (sign 1) or subtracts (sign -1) point p.
func (s *linState) apply(p FPoint, sign float64) {
	if isWild(p.F) {
		s.wild += int(sign)
		return
	}
	s.n += int(sign)
	s.ops++
	x := float64(p.T - s.ref)
	s.sx = s.sx.addTerm(sign*x, 0)
	s.sy = s.sy.addTerm(sign*p.F, 0)
	s.sxy = s.sxy.addProd(x, p.F, sign)
	s.sxx = s.sxx.addProd(x, x, sign)
	s.absX += math.Abs(x)
	s.absY += math.Abs(p.F)
	s.absXY += math.Abs(x * p.F)
	s.absXX += x * x
}

// rebuild sums the window [lo, hi) of pts afresh.
func (s *linState) rebuild(pts []FPoint, lo, hi int) {
	*s = linState{valid: true, lo: lo, hi: hi, ref: pts[lo].T, lastChange: s.lastChange, changeComputed: s.changeComputed}
	for i := lo; i < hi; i++ {
		s.apply(pts[i], 1)
	}
	s.ops = 0
}

// moveTo makes the sums those of [lo, hi), both at or after the state's.
func (s *linState) moveTo(pts []FPoint, lo, hi int) {
	for ; s.changeComputed < hi; s.changeComputed++ {
		if i := s.changeComputed; i > 0 && pts[i].F != pts[i-1].F {
			s.lastChange = i
		}
	}
	if !s.valid || lo < s.lo || hi < s.hi || lo >= s.hi || s.ops > 2*(hi-lo)+32 {
		s.rebuild(pts, lo, hi)
		return
	}
	for ; s.hi < hi; s.hi++ {
		s.apply(pts[s.hi], 1)
	}
	for ; s.lo < lo; s.lo++ {
		s.apply(pts[s.lo], -1)
	}
}

// linFit is a fit of a window: x in milliseconds from ref.
type linFit struct {
	n, mx, my float64 // mean x and y
	cov, varX float64 // n times the covariance and the variance of x
	ref       int64
}

// centred returns the fit of the state's sums and whether the sums'
// accumulated error is small against it.
func (s *linState) centred() (linFit, bool) {
	n := float64(s.n)
	mx := s.sx.divN(n)
	f := linFit{n: n, mx: mx.hi, my: s.sy.hi / n, ref: s.ref,
		cov: mulSubFrom(s.sxy, mx, s.sy), varX: mulSubFrom(s.sxx, mx, s.sx)}
	// Each operation errs by at most 2^-104 of a partial sum, and no
	// partial sum exceeds the sum of the absolute terms since the rebuild.
	const eps2 = 0x1p-104
	k := eps2 * float64(s.ops+s.n+4)
	ax := math.Abs(f.mx)
	errCov := k * (s.absXY + ax*s.absY + math.Abs(f.my)*s.absX)
	errVar := k * (s.absXX + 2*ax*s.absX)
	return f, errCov <= 1e-15*math.Abs(f.cov) && errVar <= 1e-15*f.varX
}

// fit returns the window's fit, or false when the direct fit must run:
// the window holds a wild value, or its values are all equal (which
// Prometheus answers specially).
func (w *rollupWindow) fit() (linFit, bool) {
	if w.lin == nil {
		w.lin = &linState{}
	}
	s := w.lin
	s.moveTo(w.series, w.lo, w.hi)
	if s.wild > 0 || s.lastChange <= w.lo {
		return linFit{}, false
	}
	f, exact := s.centred()
	if !exact {
		s.rebuild(w.series, w.lo, w.hi)
		f, _ = s.centred()
	}
	return f, true
}

// promCentringError estimates the relative error of Prometheus's slope
// for x measured from pRef: the cancellation of its uncentred sums.
func (f linFit) promCentringError(pRef int64) float64 {
	mxP := f.mx + float64(f.ref-pRef) // mean x from pRef, ms
	varPer := f.varX / f.n
	kVar := 1 + 2*mxP*mxP/varPer
	kCov := 1 + 2*f.n*math.Abs(mxP*f.my)/math.Abs(f.cov)
	return 4 * 0x1p-53 * (kVar + kCov)
}

// slope is per second.
func (f linFit) slope() float64 { return f.cov / f.varX * 1e3 }

func deriv(w *rollupWindow) (float64, bool) {
	pts := w.window()
	if len(pts) < 2 {
		return 0, false
	}
	if f, ok := w.fit(); ok {
		if e := f.promCentringError(pts[0].T); e <= maxPromFitError {
			return f.slope(), true
		}
	}
	slope, _ := linearRegression(pts, pts[0].T)
	return slope, true
}

// predictLinear extrapolates from the step's evaluation time, whatever
// offset or @ moved the window to.
func predictLinear(w *rollupWindow) (float64, bool) {
	if len(w.window()) < 2 {
		return 0, false
	}
	if f, ok := w.fit(); ok {
		dur := w.params[0]
		slopeMs := f.cov / f.varX
		dx := float64(w.ts-f.ref) - f.mx + dur*1e3 // from the mean x to the predicted time, ms
		v := f.my + slopeMs*dx
		mxP := (f.mx + float64(f.ref-w.ts)) / 1e3
		kOut := (math.Abs(f.my) + math.Abs(slopeMs*1e3)*(math.Abs(mxP)+math.Abs(dur))) / math.Abs(v)
		if e := f.promCentringError(w.ts) * kOut; e <= maxPromFitError {
			return v, true
		}
	}
	slope, intercept := linearRegression(w.window(), w.ts)
	return slope*w.params[0] + intercept, true
}
