// Tests for the SVG bar chart: input parsing, axis rounding and the
// geometry and well-formedness of the output.
package main

import (
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		groups  []string
		series  []string
		nbars   []int
		wantErr string
	}{
		{name: "two groups two series", in: "veth\t1 stream\t17.5\nveth\t4 streams\t23.8\nwg\t1 stream\t2.4\n",
			groups: []string{"veth", "wg"}, series: []string{"1 stream", "4 streams"}, nbars: []int{2, 1}},
		{name: "comments blanks crlf", in: "# header\n\nveth\t1\t1\r\n",
			groups: []string{"veth"}, series: []string{"1"}, nbars: []int{1}},
		{name: "zero is allowed", in: "a\tb\t0\n", groups: []string{"a"}, series: []string{"b"}, nbars: []int{1}},
		{name: "empty", in: "", wantErr: "no data"},
		{name: "only comments", in: "# x\n", wantErr: "no data"},
		{name: "two fields", in: "a\t1\n", wantErr: "line 1: want group"},
		{name: "four fields", in: "a\tb\t1\t2\n", wantErr: "got 4 fields"},
		{name: "not a number", in: "a\tb\tfast\n", wantErr: "not a number"},
		{name: "negative", in: "a\tb\t-1\n", wantErr: "finite number >= 0"},
		{name: "nan", in: "a\tb\tNaN\n", wantErr: "finite number >= 0"},
		{name: "inf", in: "a\tb\t+Inf\n", wantErr: "finite number >= 0"},
		{name: "empty name", in: "\tb\t1\n", wantErr: "empty group"},
		{name: "duplicate", in: "a\tb\t1\nx\tb\t2\na\tb\t3\n", wantErr: "line 3: second value"},
		{name: "line too long", in: strings.Repeat("x", maxLine+1) + "\tb\t1\n", wantErr: "read input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if strings.Join(c.groups, "|") != strings.Join(tt.groups, "|") {
				t.Errorf("groups = %q, want %q", c.groups, tt.groups)
			}
			if strings.Join(c.series, "|") != strings.Join(tt.series, "|") {
				t.Errorf("series = %q, want %q", c.series, tt.series)
			}
			for i, n := range tt.nbars {
				if len(c.bars[i]) != n {
					t.Errorf("group %d has %d bars, want %d", i, len(c.bars[i]), n)
				}
			}
		})
	}
}

func TestNiceMax(t *testing.T) {
	tests := []struct{ in, want float64 }{
		{0, 1}, {0.5, 1}, {1, 1}, {1.2, 2}, {2, 2}, {2.1, 2.5}, {2.43, 2.5}, {3, 5}, {17.5, 20},
		{23.8, 25}, {26, 50}, {99, 100}, {100, 100}, {101, 200}, {4500, 5000},
	}
	for _, tt := range tests {
		if got := niceMax(tt.in); got != tt.want {
			t.Errorf("niceMax(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

var rectRE = regexp.MustCompile(`<rect x="(\d+)" y="\d+" width="([0-9.]+)" height="18" fill="(#[0-9a-f]+)"/>`)

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		title  string
		widths []float64 // expected bar widths in input order
		fills  []string
	}{
		// 900 px wide: plot area 900-280-70 = 550 px; axis top 25 for 23.8.
		{name: "throughput", in: "veth\t1 stream\t17.5\nveth\t4 streams\t23.8\nwg <go> & co\t1 stream\t2.5\n",
			title: `Gbit/s "median" <3 runs>`, widths: []float64{385, 523.6, 55}, fills: []string{"#4c72b0", "#dd8452", "#4c72b0"}},
		{name: "all zero", in: "a\tb\t0\n", title: "", widths: []float64{0}, fills: []string{"#4c72b0"}},
		{name: "palette wraps", in: "g\ts1\t1\ng\ts2\t1\ng\ts3\t1\ng\ts4\t1\ng\ts5\t1\ng\ts6\t1\ng\ts7\t1\n",
			widths: []float64{550, 550, 550, 550, 550, 550, 550},
			fills:  []string{"#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#4c72b0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var b strings.Builder
			if err := render(&b, c, tt.title, 900); err != nil {
				t.Fatalf("render: %v", err)
			}
			out := b.String()
			// Well-formed XML, and the title survives escaping.
			d := xml.NewDecoder(strings.NewReader(out))
			var text strings.Builder
			for {
				tok, err := d.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("output is not well-formed XML: %v\n%s", err, out)
				}
				if cd, ok := tok.(xml.CharData); ok {
					text.Write(cd)
				}
			}
			if !strings.Contains(text.String(), tt.title) {
				t.Errorf("title %q not in the text of the SVG", tt.title)
			}
			for _, g := range c.groups {
				if !strings.Contains(text.String(), g) {
					t.Errorf("group label %q not in the text of the SVG", g)
				}
			}
			m := rectRE.FindAllStringSubmatch(out, -1)
			if len(m) != len(tt.widths) {
				t.Fatalf("found %d bars, want %d\n%s", len(m), len(tt.widths), out)
			}
			for i, mm := range m {
				w, _ := strconv.ParseFloat(mm[2], 64)
				if w < tt.widths[i]-0.1 || w > tt.widths[i]+0.1 {
					t.Errorf("bar %d width %v, want %v", i, w, tt.widths[i])
				}
				if mm[1] != strconv.Itoa(labelWidth) {
					t.Errorf("bar %d starts at x=%s, want %d", i, mm[1], labelWidth)
				}
				if mm[3] != tt.fills[i] {
					t.Errorf("bar %d fill %s, want %s", i, mm[3], tt.fills[i])
				}
			}
		})
	}
}

func TestRenderTooNarrow(t *testing.T) {
	c, err := parse(strings.NewReader("a\tb\t1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := render(io.Discard, c, "", 300); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Fatalf("render at width 300: error %v, want \"too small\"", err)
	}
}
