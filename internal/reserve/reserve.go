// Package reserve puts a finished file in place under its name without
// ever replacing a file there, on file systems with hard links and
// without them (FAT and exFAT on USB sticks, some SMB shares), and tells
// beforehand whether a folder can take a file at all.
package reserve

import "os"

// Rename renames partial to target without replacing a file: target is
// created empty, only if it does not exist (fs.ErrExist says it does), and
// partial is renamed onto that file of our own. As with a hard link, the
// partial name is gone once the file is in place. A rename that fails
// removes the empty file again.
func Rename(partial, target string) error {
	// O_EXCL also refuses a symbolic link in the name's place, dangling
	// or not: nothing is written through one.
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	mine, statErr := f.Stat()
	f.Close()
	if err := os.Rename(partial, target); err != nil {
		// Removed only while it is still the empty file made here.
		if now, err := os.Lstat(target); err == nil && statErr == nil && os.SameFile(mine, now) && now.Size() == 0 {
			os.Remove(target)
		}
		return err
	}
	return nil
}

// Writable tells whether a file can be made in dir, by making one and
// removing it: a folder that cannot take a file is found before anyone is
// asked for anything, not once the file has come.
func Writable(dir string) error {
	f, err := os.CreateTemp(dir, ".tether-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
