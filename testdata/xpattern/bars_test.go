package main

import (
	"testing"

	"github.com/jezek/xgb/xproto"
)

// raster draws rectangles into a grey picture, as the X server would.
type raster struct {
	w, h int
	pix  []uint8
}

func newRaster(w, h int, grey uint8) *raster {
	r := &raster{w: w, h: h, pix: make([]uint8, w*h)}
	for i := range r.pix {
		r.pix[i] = grey
	}
	return r
}

func (r *raster) fill(v uint8, rects []xproto.Rectangle) {
	for _, rc := range rects {
		for y := int(rc.Y); y < int(rc.Y)+int(rc.Height); y++ {
			for x := int(rc.X); x < int(rc.X)+int(rc.Width); x++ {
				r.pix[y*r.w+x] = v
			}
		}
	}
}

func (r *raster) at(x, y int) uint8 { return r.pix[y*r.w+x] }

func TestBarsRoundTrip(t *testing.T) {
	for _, size := range [][2]int{{1280, 720}, {1920, 1080}, {1366, 768}} {
		for _, v := range []uint32{0, 1, 0x8000, 0xffff, 0x1234, 70000} {
			r := newRaster(size[0], size[1], 128)
			black, white := barRects(v, uint16(size[0]), uint16(size[1]))
			r.fill(0, black)
			r.fill(255, white)
			got, ok := readBars(r.at, size[0], size[1])
			if !ok || got != v&0xffff {
				t.Errorf("%dx%d: value %#x read back as %#x, %v", size[0], size[1], v, got, ok)
			}
		}
	}
}

// A capture between the black and the white request of a paint never
// reads as a wrong value: it is either the new value or rejected.
func TestBarsHalfDrawn(t *testing.T) {
	const w, h = 1280, 720
	for _, c := range [][2]uint32{{0x00ff, 0xff00}, {0x1234, 0x1235}, {0xffff, 0}, {7, 8}} {
		old, next := c[0], c[1]
		r := newRaster(w, h, 128)
		b, wh := barRects(old, w, h)
		r.fill(0, b)
		r.fill(255, wh)
		b, _ = barRects(next, w, h)
		r.fill(0, b) // the white request has not run yet
		if got, ok := readBars(r.at, w, h); ok && got != next {
			t.Errorf("%#x → %#x half drawn reads as %#x", old, next, got)
		}
	}
}
