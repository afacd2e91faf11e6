package e2e

import (
	"debug/elf"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tether-support/tether/internal/xtest"
)

// TestHostNeedsOnlyCommonLibraries: the host a join page offers runs on
// the user's desktop, whatever distribution it is, so it may load only
// what every X11 desktop has: glibc no newer than 2.34 (Debian 12, Ubuntu
// 22.04, Fedora 35, RHEL 9) and the X libraries whose names have not
// changed in decades. The video libraries (libvpx, libyuv), whose names
// change with each release (libvpx7 on Debian 12, libvpx9 on Ubuntu 24.04),
// are built in.
func TestHostNeedsOnlyCommonLibraries(t *testing.T) {
	f, err := elf.Open(xtest.Build(t, "./host"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "ld-linux-x86-64.so.2",
		"libX11.so.6", "libXext.so.6", "libXtst.so.6", "libXdamage.so.1", "libXfixes.so.3", "libXi.so.6"}
	for _, lib := range libs {
		if !slices.Contains(common, lib) {
			t.Errorf("the host needs %s, which a desktop of another distribution or release may not have", lib)
		}
	}
	syms, err := f.ImportedSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		v, ok := strings.CutPrefix(s.Version, "GLIBC_2.")
		if !ok {
			continue
		}
		if minor, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0]); err != nil || minor > 34 {
			t.Errorf("the host needs %s@%s, newer than glibc 2.34", s.Name, s.Version)
		}
	}
}
