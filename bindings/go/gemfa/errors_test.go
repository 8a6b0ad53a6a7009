package gemfa

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(Version()) {
		t.Fatalf("Version() = %q", Version())
	}
	var major, minor, patch int
	fmt.Sscanf(Version(), "%d.%d.%d", &major, &minor, &patch)
	if VersionNumber() != major*10000+minor*100+patch {
		t.Errorf("VersionNumber() = %d for %s", VersionNumber(), Version())
	}
	if VersionNumber()/10000 != HeaderVersionNumber/10000 {
		t.Errorf("library %d and header %d majors differ", VersionNumber(), HeaderVersionNumber)
	}
}

func TestSentinelsCoverEveryStatus(t *testing.T) {
	sentinels := []*Error{ErrInvalidArgument, ErrOutOfMemory, ErrIO, ErrFormat, ErrConfig,
		ErrTensorMissing, ErrTensorShape, ErrUnsupported, ErrNoTokenizer, ErrNoWeights,
		ErrInvalidUTF8, ErrInvalidToken, ErrTemplate, ErrBufferTooSmall, ErrContextFull,
		ErrCancelled, ErrInternal, ErrNotFound}
	for i, s := range sentinels {
		code := Status(i + 1)
		if s.Code != code {
			t.Errorf("sentinel %d has code %d", i, s.Code)
		}
		if name := code.String(); name == "GEMFA_ERR_UNKNOWN" {
			t.Errorf("status %d has no name in the library", code)
		}
		err := error(&Error{Code: code, Message: "detail"})
		for j, other := range sentinels {
			// NOT_FOUND also matches ErrIO (what 0.1.0 returned for it)
			want := i == j || (code == StatusNotFound && other == ErrIO)
			if got := errors.Is(err, other); got != want {
				t.Errorf("errors.Is(%v, sentinel %d) = %v", err, j, got)
			}
		}
		if got := errors.Is(err, fs.ErrNotExist); got != (code == StatusNotFound) {
			t.Errorf("errors.Is(%v, fs.ErrNotExist) = %v", err, got)
		}
		wrapped := fmt.Errorf("context: %w", err)
		if !errors.Is(wrapped, s) {
			t.Errorf("wrapped %v does not match its sentinel", err)
		}
	}
}

// Every status of gemfa.h has a Go constant with its value and a sentinel
// (a code appended to the header must be added here too).
func TestStatusesCoverTheHeader(t *testing.T) {
	root := os.Getenv("GEMFA_SOURCE_ROOT")
	if root == "" {
		root = filepath.Join("..", "..", "..")
	}
	text, err := os.ReadFile(filepath.Join(root, "include", "gemfa.h"))
	if err != nil {
		t.Fatal(err)
	}
	body := string(text)
	body = body[strings.Index(body, "typedef enum gemfa_status"):strings.Index(body, "} gemfa_status;")]
	found := regexp.MustCompile(`GEMFA_(?:ERR_)?(\w+) = (\d+)`).FindAllStringSubmatch(body, -1)
	if len(found) < 19 {
		t.Fatalf("parsed %d statuses from gemfa.h", len(found))
	}
	sentinels := map[Status]*Error{StatusNotFound: ErrNotFound, StatusIO: ErrIO,
		StatusInternal: ErrInternal, StatusModelMismatch: ErrModelMismatch}
	for _, f := range found {
		v, _ := strconv.Atoi(f[2])
		if name := Status(v).String(); name != "GEMFA_OK" && name != "GEMFA_ERR_"+f[1] {
			t.Errorf("status %d: library name %s, header %s", v, name, f[1])
		}
		if Status(v) > StatusModelMismatch {
			t.Errorf("gemfa.h has GEMFA_ERR_%s = %d: add its Status constant and sentinel", f[1], v)
		}
		if s, ok := sentinels[Status(v)]; ok && s.Code != Status(v) {
			t.Errorf("sentinel of %s has code %d", f[1], s.Code)
		}
	}
}

func TestStatusNames(t *testing.T) {
	if StatusOK.String() != "GEMFA_OK" || StatusContextFull.String() != "GEMFA_ERR_CONTEXT_FULL" ||
		StatusInvalidUTF8.String() != "GEMFA_ERR_INVALID_UTF8" {
		t.Errorf("names: %s %s %s", StatusOK, StatusContextFull, StatusInvalidUTF8)
	}
	if Status(99).String() != "GEMFA_ERR_UNKNOWN" {
		t.Errorf("unknown status: %s", Status(99))
	}
	e := &Error{Code: StatusIO, Message: "cannot open x"}
	if e.Error() != "gemfa: GEMFA_ERR_IO: cannot open x" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestClosedAndCancelledErrors(t *testing.T) {
	c := closedError("the model")
	if !errors.Is(c, ErrClosed) || !errors.Is(c, ErrInvalidArgument) {
		t.Errorf("closed error %v must match ErrClosed and ErrInvalidArgument", c)
	}
	if errors.Is(&Error{Code: StatusInvalidArgument, Message: "x"}, ErrClosed) {
		t.Error("a plain invalid argument must not match ErrClosed")
	}
	e := &Error{Code: StatusCancelled, cause: context.DeadlineExceeded}
	if !errors.Is(e, ErrCancelled) || !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("cancelled error %v must match ErrCancelled and its cause", e)
	}
}
