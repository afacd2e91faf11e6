package capture

import (
	"fmt"
	"image"
	"testing"
)

func TestTileHashes(t *testing.T) {
	// Sizes that end on a tile boundary and sizes that leave partial
	// tiles; a stride wider than the picture.
	for _, size := range [][2]int{{64, 64}, {130, 70}, {1, 1}, {200, 129}} {
		w, h := size[0], size[1]
		t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
			stride := 4*w + 12
			pix := make([]byte, stride*h)
			for i := range pix {
				pix[i] = byte(i * 31)
			}
			var base, probe tileHashes
			base.compute(pix, stride, w, h)
			probe.compute(pix, stride, w, h)
			if !probe.equal(&base) {
				t.Fatal("the same picture hashes differently")
			}
			// Padding is not picture: changing it is no change.
			pix[4*w] ^= 0xff
			probe.compute(pix, stride, w, h)
			if !probe.equal(&base) {
				t.Error("a change in the row padding counts as a change")
			}
			pix[4*w] ^= 0xff
			// Any one byte of any pixel, in the corners and the middle.
			for _, p := range [][2]int{{0, 0}, {w - 1, 0}, {0, h - 1}, {w - 1, h - 1}, {w / 2, h / 2}} {
				for b := 0; b < 4; b++ {
					i := p[1]*stride + 4*p[0] + b
					pix[i] ^= 1
					probe.compute(pix, stride, w, h)
					if probe.equal(&base) {
						t.Errorf("pixel %v byte %d changed, hashes did not", p, b)
					}
					pix[i] ^= 1
				}
			}
			if h >= 2 {
				// Two rows swapping places within a tile.
				r0, r1 := pix[:4*w], pix[stride:stride+4*w]
				for i := range r0 {
					r0[i], r1[i] = r1[i], r0[i]
				}
				probe.compute(pix, stride, w, h)
				if probe.equal(&base) {
					t.Error("swapping two rows went unnoticed")
				}
			}
			var cp tileHashes
			cp.copyFrom(&base)
			if !cp.equal(&base) {
				t.Error("copyFrom does not copy")
			}
			probe.compute(pix[:stride*(h/2+1)], stride, w, h/2+1)
			if h > 1 && probe.equal(&base) {
				t.Error("pictures of different sizes compare equal")
			}
		})
	}
}

func BenchmarkTileHashes1080p(b *testing.B) {
	const w, h = 1920, 1080
	pix := make([]byte, 4*w*h)
	var t tileHashes
	b.SetBytes(int64(len(pix)))
	for i := 0; i < b.N; i++ {
		t.compute(pix, 4*w, w, h)
	}
}

func TestTileHashesDiff(t *testing.T) {
	const w, h, stride = 200, 129, 4 * 200
	pix := make([]byte, stride*h)
	var before, after tileHashes
	before.compute(pix, stride, w, h)
	after.compute(pix, stride, w, h)
	if r := before.diff(&after); !r.Empty() {
		t.Errorf("the same picture: diff %v, want empty", r)
	}
	// Pixels in two tiles: the box of both tiles, cut to the picture.
	pix[70*stride+4*10] = 1
	pix[128*stride+4*199] = 1
	after.compute(pix, stride, w, h)
	if r, want := before.diff(&after), image.Rect(0, 64, 200, 129); r != want {
		t.Errorf("diff %v, want %v", r, want)
	}
	var none tileHashes
	if r, want := none.diff(&after), image.Rect(0, 0, w, h); r != want {
		t.Errorf("from no picture: diff %v, want %v", r, want)
	}
}
