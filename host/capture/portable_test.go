package capture

import (
	"bytes"
	"fmt"
	"testing"
)

func TestRGBAToBGRA(t *testing.T) {
	for _, w := range []int{1, 2, 3, 8} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			const h, srcPad, dstPad = 3, 5, 12
			src := make([]byte, (4*w+srcPad)*h)
			for i := range src {
				src[i] = byte(i*7 + 1)
			}
			dst := bytes.Repeat([]byte{0xee}, (4*w+dstPad)*h)
			rgbaToBGRA(dst, 4*w+dstPad, src, 4*w+srcPad, w, h)
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					s := src[y*(4*w+srcPad)+4*x:][:4]
					d := dst[y*(4*w+dstPad)+4*x:][:4]
					if want := []byte{s[2], s[1], s[0], 0xff}; !bytes.Equal(d, want) {
						t.Errorf("pixel %d,%d: RGBA %v became %v, want BGRA %v", x, y, s, d, want)
					}
				}
				// Row padding of the destination is left alone.
				pad := dst[y*(4*w+dstPad)+4*w:][:dstPad]
				if !bytes.Equal(pad, bytes.Repeat([]byte{0xee}, dstPad)) {
					t.Errorf("row %d: padding overwritten: %v", y, pad)
				}
			}
		})
	}
}
