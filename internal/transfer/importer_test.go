package transfer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/memstore"
)

// jsonLines is the read function of an import of JSON lines from r.
func jsonLines(r io.Reader) func(context.Context, func(Record) error) error {
	return func(ctx context.Context, fn func(Record) error) error {
		return readJSONLines(ctx, Input{Reader: r}, fn)
	}
}

func genLines(n int, prefix string) string {
	var b strings.Builder
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for i := range n {
		fmt.Fprintf(&b, `{"user_name":"%s%d","client_id":"1000.P","access_token":"SECRET-%s%d","refresh_token":"SECRET-r%d","expiry":%q}`+"\n",
			prefix, i, prefix, i, i, exp)
	}
	return b.String()
}

func TestImportProgress(t *testing.T) {
	store := memstore.New()

	t.Run("lines", func(t *testing.T) {
		var out bytes.Buffer
		im := &importer{store: store, namespace: "test", workers: 4, progress: ProgressLines, out: &out, errOut: &out, size: -1, every: 10, tick: progressTick, now: time.Now}
		if err := im.run(context.Background(), jsonLines(strings.NewReader(genLines(35, "lines"))), "test"); err != nil {
			t.Fatal(err)
		}
		got := regexp.MustCompile(`(?m)^imported (\d+) tokens \(\d+ records read\)$`).FindAllStringSubmatch(out.String(), -1)
		var counts []string
		for _, m := range got {
			counts = append(counts, m[1])
		}
		if !slices.Equal(counts, []string{"10", "20", "30"}) {
			t.Errorf("progress lines %v, want 10, 20, 30:\n%s", counts, out.String())
		}
	})

	t.Run("live", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			// Feed slowly enough that the live line is drawn a few times.
			w := bufio.NewWriter(pw)
			for _, line := range strings.SplitAfter(genLines(20, "live"), "\n") {
				w.WriteString(line)
				w.Flush()
				time.Sleep(5 * time.Millisecond)
			}
			pw.Write([]byte("bad line\n"))
			pw.Close()
		}()
		var out bytes.Buffer
		im := &importer{store: store, namespace: "test", workers: 2, progress: ProgressLive, out: &out, errOut: &out, size: -1, every: progressEvery, tick: 10 * time.Millisecond, now: time.Now}
		err := im.run(context.Background(), jsonLines(pr), "pipe")
		if err == nil || !strings.Contains(err.Error(), "1 of 21 records were not imported") {
			t.Errorf("live import: %v", err)
		}
		s := out.String()
		if !strings.Contains(s, "\r\x1b[Kimporting: ") {
			t.Errorf("no live progress line in %q", s)
		}
		// Every report line starts on a cleared line, and the summary ends clean.
		if !strings.Contains(s, "line 21: invalid JSON at byte 1\n") || !strings.HasSuffix(s, "1 bad records skipped\n") {
			t.Errorf("live output %q", s)
		}
		if i := strings.LastIndex(s, "importing: "); i >= 0 && !strings.Contains(s[i:], "\r\x1b[K") {
			t.Errorf("the live line is not cleared at the end: %q", s[i:])
		}
	})

	all, err := store.GetTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(all); n != 55 {
		t.Errorf("%d tokens imported, want 55", n)
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("a", 200<<10) // longer than bufio.Scanner's 64 KiB and than the reader's buffer
	input := "one\r\n\n" + long + "\n" + strings.Repeat("b", 300) + "\nafter\nlast"
	lr := &lineReader{r: bufio.NewReaderSize(strings.NewReader(input), 16), max: 250 << 10}
	type got struct {
		line    string
		tooLong bool
	}
	var lines []got
	for {
		line, tooLong, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, got{string(line), tooLong})
	}
	want := []got{{"one", false}, {"", false}, {long, false}, {strings.Repeat("b", 300), false}, {"after", false}, {"last", false}}
	if !slices.Equal(lines, want) {
		t.Errorf("lines differ: got %d lines", len(lines))
	}

	lr = &lineReader{r: bufio.NewReaderSize(strings.NewReader(long+"\nnext\n"+long), 16), max: 1000}
	var seq []got
	for {
		line, tooLong, err := lr.next()
		if err == io.EOF {
			break
		}
		seq = append(seq, got{string(line), tooLong})
	}
	if want := []got{{"", true}, {"next", false}, {"", true}}; !slices.Equal(seq, want) {
		t.Errorf("too-long lines: %v, want %v", seq, want)
	}
}
