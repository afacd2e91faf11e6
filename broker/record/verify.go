package record

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNotArchive is returned by verify when what is in an archive's place
// is not a directory (a file put there instead).
var ErrNotArchive = errors.New("in the archive's place on the broker there is a file, not the archive's folder, so there is nothing to check")

// Problem is one thing wrong with an archive, named by the part it is in.
type Problem struct {
	Part    string `json:"part"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Part + ": " + p.Message }

// Report is the result of verifying an archive.
type Report struct {
	Session    string `json:"session"`
	State      string `json:"state"`
	Signer     string `json:"signer"` // fingerprint of the key that signed
	PartsOK    int    `json:"parts_ok"`
	EventLines int64  `json:"event_lines"` // the sealed lines of the event log, whose chain was checked
	// UnsealedLines and UnsealedBytes count what is in the archive past
	// its last seal (lines of the event log; bytes of every part, and
	// files the manifest does not list): the signature does not cover
	// it, whether a stopped broker wrote it or someone else did, and the
	// player does not show it. Only an archive that is not complete may
	// hold any without a problem.
	UnsealedLines int64     `json:"unsealed_event_lines,omitempty"`
	UnsealedBytes int64     `json:"unsealed_bytes,omitempty"`
	Problems      []Problem `json:"problems"`
	Warnings      []Problem `json:"warnings"`
	TrustedKey    bool      `json:"trusted_key"` // the signer is the key the caller trusts
	// ChainUnchecked: the events are encrypted and no key was given, so
	// their hash chain was not checked (their bytes' hashes were).
	ChainUnchecked bool `json:"chain_unchecked,omitempty"`
	// Decrypted: a copy written by broker decrypt, whose parts other than
	// the event log are checked against decrypted.json, not the signature.
	Decrypted   bool   `json:"decrypted,omitempty"`
	ManifestRaw []byte `json:"-"`

	sigMismatch bool // the signature read does not match the manifest read
}

// OK reports whether nothing is wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problem(part, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{part, fmt.Sprintf(format, args...)})
}

func (r *Report) warn(part, format string, args ...any) {
	r.Warnings = append(r.Warnings, Problem{part, fmt.Sprintf(format, args...)})
}

// Verify checks an archive offline: the manifest's signature (against
// trusted when given, else the key the manifest names), the SHA-256 of
// every part, and the chain of events.jsonl. It reports every problem it
// finds, each naming the part.
func Verify(dir string, trusted ed25519.PublicKey) (*Report, error) {
	return VerifyWith(dir, trusted, nil)
}

// VerifyWith is Verify for archives encrypted at rest: with encKey it also
// checks the event chain inside; without it, signature and hashes only.
// A decrypted copy (written by broker decrypt) is checked as one.
func VerifyWith(dir string, trusted ed25519.PublicKey, encKey []byte) (*Report, error) {
	return verifyArchive(dir, trusted, encKey, true)
}

// resealPause is how long verify gives a recording being sealed again to
// put its new manifest in place (see verifyArchive): the two files are
// renamed one after the other.
const resealPause = 50 * time.Millisecond

// verifyArchive is VerifyWith; a decrypted copy is recognised only when
// copies is true: decrypted.json is not signed, so only whoever made the
// copy can rely on it.
//
// A recording still being made is sealed again every segment: its new
// signature is renamed into place, then its new manifest. A verify that
// read the manifest just before and the signature just after finds them
// apart; it looks again once the manifest has moved on, instead of
// reporting an archive altered.
func verifyArchive(dir string, trusted ed25519.PublicKey, encKey []byte, copies bool) (*Report, error) {
	for tries := 1; ; tries++ {
		r, err := verifyOnce(dir, trusted, encKey, copies)
		if err != nil || !r.sigMismatch || r.State != StateRecording || tries == 3 {
			return r, err
		}
		time.Sleep(resealPause)
		if _, raw, err := ReadManifest(dir); err != nil || bytes.Equal(raw, r.ManifestRaw) {
			return r, nil
		}
	}
}

func verifyOnce(dir string, trusted ed25519.PublicKey, encKey []byte, copies bool) (*Report, error) {
	// The errors and the report reach API clients: they say what is wrong
	// without the server's paths (see withoutPath).
	r := &Report{}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", withoutPath(err))
	}
	if !st.IsDir() {
		return nil, ErrNotArchive
	}
	m, raw, err := ReadManifest(dir)
	r.ManifestRaw = raw
	if err != nil {
		if raw == nil {
			r.problem(ManifestFile, "missing or unreadable: %v", withoutPath(err))
		} else {
			r.problem(ManifestFile, "%v", err)
		}
		return r, nil
	}
	r.Session, r.State = m.Session, m.State
	verifySignature(r, dir, m, raw, trusted)
	if m.Format != Format {
		r.problem(ManifestFile, "format %q is not %q", m.Format, Format)
	}
	if m.EventsLost > 0 || m.InputCountsLost > 0 {
		r.warn(ManifestFile, "%d events or pieces of terminal output, and %d input events of the counts, could not be written in time (the disk stalled) and are missing; recording.gap events mark where", m.EventsLost, m.InputCountsLost)
	}
	switch m.State {
	case StateComplete:
	case StateIncomplete, StateFailed:
		r.warn(ManifestFile, "the archive is %s: %s", m.State, m.Note)
	case StateRecording:
		r.warn(ManifestFile, "the session is still being recorded (or the broker stopped and has not restarted): only the sealed parts are checked")
	default:
		r.problem(ManifestFile, "unknown state %q", m.State)
	}

	listed := map[string]bool{ManifestFile: true, SignatureFile: true}
	var clear map[string]DecryptedPart
	if copies {
		clear, err = readDecrypted(dir)
	} else if _, serr := os.Lstat(filepath.Join(dir, DecryptedFile)); serr == nil {
		listed[DecryptedFile] = true
		r.problem(DecryptedFile, "the broker never writes a decrypted copy into its recordings: someone else put this file here, and the parts are checked against the signed manifest only")
	}
	switch {
	case err != nil:
		r.problem(DecryptedFile, "%v", err)
		return r, nil
	case clear != nil && !m.Encrypted:
		r.problem(DecryptedFile, "the manifest says the archive was never encrypted")
		return r, nil
	case clear != nil:
		r.Decrypted, listed[DecryptedFile] = true, true
		r.warn(DecryptedFile, "a decrypted copy: the event log is checked against the signed manifest, the other parts only against decrypted.json, which the broker did not sign (verify the encrypted archive to prove them)")
	}
	for _, p := range m.Parts {
		if !safeName(p.Name) {
			r.problem(ManifestFile, "part name %q is not a plain file name", p.Name)
			continue
		}
		listed[p.Name] = true
		ok := false
		if clear != nil {
			ok = verifyClearPart(r, dir, m, p, clear)
		} else {
			ok = verifyPart(r, dir, m, p, encKey)
		}
		if ok {
			r.PartsOK++
		}
	}
	if !slices.ContainsFunc(m.Parts, func(p Part) bool { return p.Kind == KindEvents }) {
		r.problem(ManifestFile, "lists no %s", EventsFile)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list archive: %w", withoutPath(err))
	}
	for _, e := range entries {
		if listed[e.Name()] || strings.HasSuffix(e.Name(), ".new") {
			continue
		}
		if m.State == StateComplete {
			r.problem(e.Name(), "is not listed in the manifest (added after sealing)")
		} else {
			if info, err := e.Info(); err == nil {
				r.UnsealedBytes += info.Size()
			}
			r.warn(e.Name(), "was not sealed before the recording stopped: not covered by the signature")
		}
	}
	return r, nil
}

func verifySignature(r *Report, dir string, m *Manifest, raw []byte, trusted ed25519.PublicKey) {
	named, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(named) != ed25519.PublicKeySize {
		r.problem(ManifestFile, "names no valid public key")
		return
	}
	key := ed25519.PublicKey(named)
	r.Signer = Fingerprint(key)
	if trusted != nil {
		if !bytes.Equal(trusted, key) {
			r.problem(ManifestFile, "signed by key %s, not the trusted key %s", Fingerprint(key), Fingerprint(trusted))
			return
		}
		r.TrustedKey = true
	}
	sigText, err := os.ReadFile(filepath.Join(dir, SignatureFile))
	if err != nil {
		r.problem(SignatureFile, "missing or unreadable: %v", withoutPath(err))
		return
	}
	sig, err := base64.StdEncoding.DecodeString(string(trimSpace(sigText)))
	if err != nil || len(sig) != ed25519.SignatureSize {
		r.problem(SignatureFile, "is not a base64 Ed25519 signature")
		return
	}
	if !ed25519.Verify(key, raw, sig) {
		r.sigMismatch = true
		r.problem(ManifestFile, "signature does not match: the manifest or its signature was changed")
	}
}

// verifyPart checks one part's sealed bytes, and for the event log its chain.
func verifyPart(r *Report, dir string, m *Manifest, p Part, encKey []byte) bool {
	path := filepath.Join(dir, p.Name)
	st, err := os.Stat(path)
	if err != nil {
		r.problem(p.Name, "missing: %v", errors.Unwrap(err))
		return false
	}
	sum, err := hashPrefix(path, p.Size)
	if err != nil {
		r.problem(p.Name, "%v", withoutPath(err))
		return false
	}
	ok := true
	if sum != p.SHA256 {
		r.problem(p.Name, "SHA-256 of the sealed %d bytes does not match the manifest: the content was changed", p.Size)
		ok = false
	}
	after := ""
	if p.Kind == KindEvents {
		if m.Encrypted && encKey == nil {
			r.warn(p.Name, "encrypted: its hash chain was not checked (give the encryption key to check it)")
			r.ChainUnchecked = true
		} else {
			var chainOK bool
			chainOK, after = verifyChain(r, dir, m, p, encKey)
			ok = chainOK && ok
		}
	}
	if extra := st.Size() - p.Size; extra > 0 {
		r.UnsealedBytes += extra
		if after == "" {
			after = fmt.Sprintf("%d bytes", extra)
		}
		if m.State == StateComplete {
			r.problem(p.Name, "has %s after the sealed end: appended after sealing", after)
			ok = false
		} else {
			// Chained or not, lines there prove nothing: the chain is
			// plain SHA-256, which anyone can extend.
			r.warn(p.Name, "%s after the last seal: not covered by the signature, so not played (the broker's last seconds, or anyone's who could write to the recordings folder)", after)
		}
	}
	return ok
}

// verifyChain checks the chain of the event log's sealed lines, and
// describes the lines after them, if any ("" when there are none, or
// they cannot be read).
func verifyChain(r *Report, dir string, m *Manifest, p Part, encKey []byte) (bool, string) {
	data, err := os.ReadFile(filepath.Join(dir, p.Name))
	if err != nil {
		r.problem(p.Name, "%v", withoutPath(err))
		return false, ""
	}
	sealed, rest := data[:min(p.Size, int64(len(data)))], []byte(nil)
	if m.Encrypted && encKey != nil {
		plain, derr := decryptPart(encKey, p.Name, sealed)
		if derr != nil && !errors.Is(derr, errTorn) {
			r.problem(p.Name, "%v", derr)
			return false, ""
		}
		// The records after the seal carry on its numbering: decrypt the
		// whole log, as far as it opens, and take what follows the seal.
		if len(data) > len(sealed) {
			all, _ := decryptPart(encKey, p.Name, data)
			rest = all[min(len(plain), len(all)):]
		}
		sealed = plain
	} else {
		rest = data[len(sealed):]
	}
	res, ok := checkSealedChain(r, m, p, sealed)
	if len(rest) == 0 {
		return ok, ""
	}
	n, after := describeUnsealed(rest, res.Lines+1)
	r.UnsealedLines += n
	return ok, after
}

// checkSealedChain checks that plain, the sealed lines of the event log,
// chains from the session's genesis to the head the manifest signs.
func checkSealedChain(r *Report, m *Manifest, p Part, plain []byte) (ChainResult, bool) {
	res := CheckChain(bytes.NewReader(plain), m.Session)
	r.EventLines = res.Lines
	ok := true
	if res.Err != nil {
		r.problem(p.Name, "hash chain broken: %v", res.Err)
		ok = false
	}
	if res.Lines < p.Lines {
		r.problem(p.Name, "has %d chained lines, the manifest seals %d", res.Lines, p.Lines)
		ok = false
	}
	if res.Err == nil && res.Lines == p.Lines && res.Head != p.Head {
		r.problem(p.Name, "the last line's hash does not match the manifest")
		ok = false
	}
	if res.Partial {
		r.warn(p.Name, "ends in an incomplete line (written when the broker stopped)")
	}
	return res, ok
}

// describeUnsealed counts the event lines after the seal, and names their
// numbers and (the first ten of) their types, so that whoever reads the
// report can tell which lines of the log are not covered by the signature
// (a consent granted there is not the broker's word).
func describeUnsealed(rest []byte, first int64) (int64, string) {
	const named = 10 // types named; any others are left at "…"
	var n int64
	var types []string
	more := false
	for {
		line, after, found := bytes.Cut(rest, []byte("\n"))
		if !found {
			break
		}
		var e struct {
			Type string `json:"type"`
		}
		typ := "not an event"
		if json.Unmarshal(line, &e) == nil && e.Type != "" {
			typ = strconv.Quote(truncate(e.Type, 40))
		}
		switch {
		case slices.Contains(types, typ):
		case len(types) < named:
			types = append(types, typ)
		default:
			more = true
		}
		n++
		rest = after
	}
	if more {
		types = append(types, "…")
	}
	var out string
	switch n {
	case 0:
	case 1:
		out = fmt.Sprintf("1 event line (line %d: %s)", first, types[0])
	default:
		out = fmt.Sprintf("%d event lines (lines %d to %d: %s)", n, first, first+n-1, strings.Join(types, ", "))
	}
	if len(rest) > 0 {
		if out != "" {
			out += " and "
		}
		out += fmt.Sprintf("an incomplete line of %d bytes", len(rest))
	}
	return n, out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// readDecrypted returns the clear parts a decrypted copy lists, by name,
// or nil for an archive that is not one.
func readDecrypted(dir string) (map[string]DecryptedPart, error) {
	data, err := os.ReadFile(filepath.Join(dir, DecryptedFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("unreadable: %w", withoutPath(err))
	}
	var d Decrypted
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("is not valid JSON: %v", err)
	}
	parts := make(map[string]DecryptedPart, len(d.Parts))
	for _, p := range d.Parts {
		parts[p.Name] = p
	}
	return parts, nil
}

// verifyClearPart checks one part of a decrypted copy: against the hash
// decrypted.json gives, and for the event log its chain against the head
// the manifest signs.
func verifyClearPart(r *Report, dir string, m *Manifest, p Part, clear map[string]DecryptedPart) bool {
	c, listed := clear[p.Name]
	if !listed {
		r.problem(p.Name, "is not listed in %s", DecryptedFile)
		return false
	}
	size, sum, err := fileHash(filepath.Join(dir, p.Name))
	if err != nil {
		r.problem(p.Name, "missing: %v", errors.Unwrap(err))
		return false
	}
	ok := true
	if size != c.Size || sum != c.SHA256 {
		r.problem(p.Name, "SHA-256 does not match %s: the content was changed after it was decrypted", DecryptedFile)
		ok = false
	}
	if p.Kind == KindEvents {
		data, err := os.ReadFile(filepath.Join(dir, p.Name))
		if err != nil {
			r.problem(p.Name, "%v", withoutPath(err))
			return false
		}
		_, chainOK := checkSealedChain(r, m, p, data)
		ok = chainOK && ok
		// A copy holds the sealed lines only: any more were added to it.
		if r.EventLines > p.Lines {
			r.problem(p.Name, "has %d chained lines, the manifest seals %d: lines were added after it was decrypted", r.EventLines, p.Lines)
			ok = false
		}
	}
	return ok
}

// safeName refuses paths that would leave the archive.
func safeName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`) && filepath.Base(name) == name
}

// WriteReport prints a report for people.
func WriteReport(w io.Writer, dir string, r *Report) {
	fmt.Fprintf(w, "archive   %s\n", dir)
	if r.Session != "" {
		fmt.Fprintf(w, "session   %s (%s)\n", r.Session, r.State)
	}
	if r.Signer != "" {
		trust := "key named by the manifest; pass -key to check it is your broker's"
		if r.TrustedKey {
			trust = "trusted key"
		}
		fmt.Fprintf(w, "signed by %s (%s)\n", r.Signer, trust)
	}
	fmt.Fprintf(w, "parts ok  %d, event lines %d\n", r.PartsOK, r.EventLines)
	for _, p := range r.Warnings {
		fmt.Fprintf(w, "warning   %s\n", p)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "FAILED    %s\n", p)
	}
	switch {
	case r.OK() && r.Decrypted:
		fmt.Fprintln(w, "verified (decrypted copy): signature and event chain are intact, and the other parts are as broker decrypt wrote them (only the encrypted archive proves they are the broker's)")
	case r.OK():
		what := "signature, hashes and event chain are intact"
		if r.ChainUnchecked {
			what = "signature and hashes are intact; the event chain was not checked (encrypted: pass -encryption-key)"
		}
		if r.UnsealedLines > 0 || r.UnsealedBytes > 0 {
			fmt.Fprintf(w, "verified up to the last seal: %s; what was written after it (see the warnings) is not covered by the signature\n", what)
		} else {
			fmt.Fprintf(w, "verified: %s\n", what)
		}
	default:
		fmt.Fprintf(w, "NOT VERIFIED: %d problem(s)\n", len(r.Problems))
	}
}

// maxZipPart bounds one file taken out of a downloaded archive.
const maxZipPart = 8 << 30

// VerifyPath verifies an archive directory, or a zip of one as the broker's
// download button makes it.
func VerifyPath(path string, trusted ed25519.PublicKey, encKey []byte) (*Report, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	if st.IsDir() {
		return VerifyWith(path, trusted, encKey)
	}
	tmp, err := os.MkdirTemp("", "tether-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	dir, damaged, err := unzipArchive(path, tmp)
	if err != nil {
		return nil, err
	}
	r, err := VerifyWith(dir, trusted, encKey)
	if err != nil {
		return nil, err
	}
	// A damaged entry is a part that is not intact, whatever its bytes say.
	r.Problems = append(damaged, r.Problems...)
	return r, nil
}

// unzipArchive extracts a downloaded archive: one folder of plain files.
// An entry whose bytes do not match the zip's own checksum, or cannot be
// read, is a damaged part: it is named in the problems returned (and kept
// as far as it could be read, for the other checks), not an archive that
// cannot be checked.
func unzipArchive(path, into string) (string, []Problem, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return "", nil, fmt.Errorf("%s is neither an archive directory nor a zip of one: %w", path, err)
	}
	defer zr.Close()
	dir := filepath.Join(into, "archive")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", nil, err
	}
	var damaged []Problem
	for _, f := range zr.File {
		name := filepath.Base(f.Name)
		if f.FileInfo().IsDir() {
			continue
		}
		if !safeName(name) || strings.Count(f.Name, "/") > 1 {
			return "", nil, fmt.Errorf("zip entry %q is not part of an archive", f.Name)
		}
		if f.UncompressedSize64 > maxZipPart {
			return "", nil, fmt.Errorf("zip entry %q is too large", f.Name)
		}
		err := extract(f, filepath.Join(dir, name))
		switch {
		case errors.Is(err, zip.ErrChecksum):
			damaged = append(damaged, Problem{name, "damaged in the zip: its bytes do not match the zip's checksum, so they were changed after the download"})
		case zipDamage(err):
			damaged = append(damaged, Problem{name, fmt.Sprintf("damaged in the zip, cannot be read: %v", err)})
		case err != nil:
			return "", nil, fmt.Errorf("extract %s: %w", f.Name, err)
		}
	}
	return dir, damaged, nil
}

// zipDamage reports whether err comes from reading a damaged zip entry,
// not from writing it out.
func zipDamage(err error) bool {
	var corrupt flate.CorruptInputError
	return errors.Is(err, zip.ErrFormat) || errors.Is(err, zip.ErrAlgorithm) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &corrupt)
}

func extract(f *zip.File, to string) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.LimitReader(rc, maxZipPart))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
