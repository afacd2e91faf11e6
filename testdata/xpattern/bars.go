package main

import (
	"fmt"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// Bars of -mode counter -bars: the counter's low BarBits bits drawn as
// black and white bars big enough to survive any VP8 quality, so that a
// viewer can read back which paint it is showing. The top quarter of the
// window is two rows of BarBits bars of equal width (the last bar takes
// the remainder): the upper row shows bit i (most significant first) as
// white for 1 and black for 0, the lower row the complement. A reader
// takes the centre of each bar and accepts a frame only if every bar is
// clearly black or white and the rows are complementary, which rejects a
// blurred frame and a capture taken between the two fill requests (black
// bars are drawn first, then white ones: a half-drawn bar pair is then
// black over black).
const BarBits = 16

// barRects returns the black and the white rectangles that show value in
// a w x h window.
func barRects(value uint32, w, h uint16) (black, white []xproto.Rectangle) {
	bw := w / BarBits
	rh := h / 8 // each row is an eighth of the window: both make the top quarter
	for i := 0; i < BarBits; i++ {
		x := uint16(i) * bw
		width := bw
		if i == BarBits-1 {
			width = w - x
		}
		bit := value>>(BarBits-1-i)&1 == 1
		upper := xproto.Rectangle{X: int16(x), Y: 0, Width: width, Height: rh}
		lower := xproto.Rectangle{X: int16(x), Y: int16(rh), Width: width, Height: rh}
		if bit {
			white, black = append(white, upper), append(black, lower)
		} else {
			black, white = append(black, upper), append(white, lower)
		}
	}
	return black, white
}

// readBars decodes what barRects drew from a picture's colour at a point
// (0 black ... 255 white), as a viewer does; ok is false for a picture that
// is not a complete set of bars.
func readBars(at func(x, y int) uint8, w, h int) (value uint32, ok bool) {
	bw, rh := w/BarBits, h/8
	for i := 0; i < BarBits; i++ {
		x := i*bw + bw/2
		up, low := at(x, rh/2), at(x, rh+rh/2)
		switch {
		case up >= 160 && low <= 95:
			value = value<<1 | 1
		case up <= 95 && low >= 160:
			value <<= 1
		default:
			return 0, false
		}
	}
	return value, true
}

// paintCounter fills the window below the bars with the grey of -mode
// counter and draws the bars for counter.
func (w *window) paintCounter(conn *xgb.Conn, counter uint32, bars bool) error {
	if !bars {
		return w.paintGrey(conn, byte(counter))
	}
	grey, err := w.grey(conn, byte(counter))
	if err != nil {
		return err
	}
	band := w.height / 8 * 2
	w.fill(conn, grey, xproto.Rectangle{Y: int16(band), Width: w.width, Height: w.height - band})
	black, white := barRects(counter, w.width, w.height)
	w.fill(conn, w.black, black...)
	w.fill(conn, w.white, white...)
	return flush(conn)
}

func (w *window) grey(conn *xgb.Conn, level byte) (uint32, error) {
	l := uint16(level) * 0x101
	reply, err := xproto.AllocColor(conn, w.cmap, l, l, l).Reply()
	if err != nil {
		return 0, fmt.Errorf("allocate grey %d: %w", level, err)
	}
	return reply.Pixel, nil
}
