package encode

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

var benchSizes = [][2]int{{1920, 1080}, {1280, 720}}

// desktop paints something like a screen while someone works: a desktop
// background, a window with a title bar and lines of small glyphs (dense,
// high-contrast detail like text), deterministic for a given size.
func desktop(w, h int) *bgra {
	m := newBGRA(w, h, 0)
	m.fill(0, 0, w, h, rgb{0x2d, 0x5a, 0x88})
	wx0, wy0, wx1, wy1 := w/12, h/12, w-w/12, h-h/8
	m.fill(wx0, wy0, wx1, wy0+32, rgb{0xe0, 0xe0, 0xe0})
	m.fill(wx0, wy0+32, wx1, wy1, rgb{0xff, 0xff, 0xff})
	r := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	ink := rgb{0x20, 0x20, 0x20}
	for y := wy0 + 48; y+12 < wy1; y += 20 {
		end := wx0 + 16 + r.IntN(wx1-wx0-32)
		for x := wx0 + 16; x+7 < end; x += 8 {
			if r.IntN(6) == 0 {
				continue // a space
			}
			// A 7x12 glyph cell with random strokes.
			for gy := 0; gy < 12; gy++ {
				for gx := 0; gx < 7; gx++ {
					if r.IntN(3) == 0 {
						m.fill(x+gx, y+gy, x+gx+1, y+gy+1, ink)
					}
				}
			}
		}
	}
	return m
}

// animator moves a 160x120 gradient box across the desktop, one step per
// frame, restoring what it covered: a small changing region per frame,
// like a dragged icon or an animation in a page.
type animator struct {
	m     *bgra
	saved []byte
	x, y  int
	step  int
}

const boxW, boxH = 160, 120

func newAnimator(m *bgra) *animator {
	return &animator{m: m, saved: make([]byte, 4*boxW*boxH), x: -1}
}

func (a *animator) next() {
	m := a.m
	if a.x >= 0 {
		for j := 0; j < boxH; j++ {
			copy(m.pix[(a.y+j)*m.stride+4*a.x:][:4*boxW], a.saved[4*boxW*j:][:4*boxW])
		}
	}
	a.step++
	a.x = (a.step * 12) % (m.w - boxW)
	a.y = m.h/2 + (a.step*5)%(m.h/3)
	for j := 0; j < boxH; j++ {
		row := m.pix[(a.y+j)*m.stride+4*a.x:][:4*boxW]
		copy(a.saved[4*boxW*j:][:4*boxW], row)
		for i := 0; i < boxW; i++ {
			row[4*i], row[4*i+1], row[4*i+2] = byte(i+a.step), byte(j*2), byte(255-i)
		}
	}
}

func BenchmarkToI420(b *testing.B) {
	for _, s := range benchSizes {
		w, h := s[0], s[1]
		b.Run(fmt.Sprintf("%dx%d", w, h), func(b *testing.B) {
			m := desktop(w, h)
			dst := NewI420(w, h)
			b.SetBytes(int64(4 * w * h))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ToI420(dst, m.pix, m.stride, w, h)
			}
		})
	}
}

func benchEncode(b *testing.B, forceKey bool) {
	for _, s := range benchSizes {
		w, h := s[0], s[1]
		b.Run(fmt.Sprintf("%dx%d", w, h), func(b *testing.B) {
			m := desktop(w, h)
			a := newAnimator(m)
			e := mustVP8(b, Config{Width: w, Height: h})
			// The first frame is a keyframe whatever we ask.
			if _, _, err := e.Encode(m.pix, m.stride, false); err != nil {
				b.Fatal(err)
			}
			total := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				a.next()
				b.StartTimer()
				frame, key, err := e.Encode(m.pix, m.stride, forceKey)
				if err != nil {
					b.Fatal(err)
				}
				if key != forceKey {
					b.Fatalf("frame %d: key %v, want %v", i, key, forceKey)
				}
				total += len(frame)
			}
			b.ReportMetric(float64(total)/float64(b.N), "bytes/frame")
		})
	}
}

// BenchmarkEncodeVP8Delta measures the steady state: conversion plus a
// delta frame for a screen where a small region moves.
func BenchmarkEncodeVP8Delta(b *testing.B) { benchEncode(b, false) }

// BenchmarkEncodeVP8Key measures conversion plus a keyframe of the same
// screen, the cost of a keyframe request.
func BenchmarkEncodeVP8Key(b *testing.B) { benchEncode(b, true) }

// BenchmarkEncodeVP8WholeScreen measures conversion plus a delta frame
// when the whole screen changes (black to white and back, as the
// input-to-pixel benchmark's witness does), with one and two threads:
// what a second thread buys where a core is free.
func BenchmarkEncodeVP8WholeScreen(b *testing.B) {
	const w, h = 1920, 1080
	black, white := newBGRA(w, h, 0), newBGRA(w, h, 0)
	white.fill(0, 0, w, h, rgb{0xff, 0xff, 0xff})
	// Names end in a letter: go test appends -GOMAXPROCS to them.
	for threads, name := range map[int]string{1: "one-thread", 2: "two-threads"} {
		b.Run(fmt.Sprintf("%dx%d/%s", w, h, name), func(b *testing.B) {
			e := mustVP8(b, Config{Width: w, Height: h, Threads: threads})
			if _, _, err := e.Encode(black.pix, black.stride, false); err != nil {
				b.Fatal(err)
			}
			screens := []*bgra{white, black}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := screens[i%2]
				if _, key, err := e.Encode(m.pix, m.stride, false); err != nil || key {
					b.Fatalf("frame %d: key %v, err %v; want a delta frame", i, key, err)
				}
			}
		})
	}
}
