// Command plot writes a horizontal grouped bar chart as SVG. It reads
// tab-separated lines "group<TAB>series<TAB>value" on standard input (one
// bar each; groups and series keep the order of their first line) and
// writes the SVG to standard output. bench/run.sh uses it for the
// throughput plot in docs/PERFORMANCE.md. Standard library only.
//
// Usage: plot [-title text] [-width px] < table.tsv > chart.svg
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// bar is one value of one series in one group.
type bar struct {
	series int
	value  float64
}

// chart is the parsed input: groups in input order, each with its bars.
type chart struct {
	groups []string
	series []string
	bars   [][]bar // bars[i] belong to groups[i]
}

// maxLine bounds one input line; the input is a small table.
const maxLine = 4096

// parse reads "group<TAB>series<TAB>value" lines. Blank lines and lines
// starting with '#' are skipped. Values must be finite and not negative.
func parse(r io.Reader) (chart, error) {
	var c chart
	gi := map[string]int{}
	si := map[string]int{}
	seen := map[[2]int]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, maxLine), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			return chart{}, fmt.Errorf("line %d: want group<TAB>series<TAB>value, got %d fields", n, len(f))
		}
		group, series := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		if group == "" || series == "" {
			return chart{}, fmt.Errorf("line %d: empty group or series name", n)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[2]), 64)
		if err != nil {
			return chart{}, fmt.Errorf("line %d: value %q: not a number", n, f[2])
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return chart{}, fmt.Errorf("line %d: value %q: want a finite number >= 0", n, f[2])
		}
		g, ok := gi[group]
		if !ok {
			g = len(c.groups)
			gi[group] = g
			c.groups = append(c.groups, group)
			c.bars = append(c.bars, nil)
		}
		s, ok := si[series]
		if !ok {
			s = len(c.series)
			si[series] = s
			c.series = append(c.series, series)
		}
		if seen[[2]int{g, s}] {
			return chart{}, fmt.Errorf("line %d: second value for %q / %q", n, group, series)
		}
		seen[[2]int{g, s}] = true
		c.bars[g] = append(c.bars[g], bar{series: s, value: v})
	}
	if err := sc.Err(); err != nil {
		return chart{}, fmt.Errorf("read input: %w", err)
	}
	if len(c.groups) == 0 {
		return chart{}, errors.New("no data: want at least one group<TAB>series<TAB>value line")
	}
	return c, nil
}

// niceMax rounds v up to 1, 2, 2.5 or 5 times a power of ten, for the
// axis; at least 1.
func niceMax(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// palette colours the series in order; it repeats after the last colour.
var palette = [...]string{"#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"}

// Layout in pixels.
const (
	labelWidth = 280
	rightPad   = 70
	barHeight  = 18
	barGap     = 4
	groupGap   = 16
	topPad     = 60
	axisPad    = 40
)

// render writes the chart as a standalone SVG document.
func render(w io.Writer, c chart, title string, width int) error {
	if width < labelWidth+rightPad+100 {
		return fmt.Errorf("width %d too small: want at least %d", width, labelWidth+rightPad+100)
	}
	hi := 0.0
	for _, bs := range c.bars {
		for _, b := range bs {
			hi = math.Max(hi, b.value)
		}
	}
	top := niceMax(hi)
	plotW := float64(width - labelWidth - rightPad)
	height := topPad + axisPad + 20*len(c.series)
	for _, bs := range c.bars {
		height += len(bs)*(barHeight+barGap) + groupGap
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="14" font-weight="bold">%s</text>`+"\n", 10, esc(title))
	// Legend.
	for i, s := range c.series {
		x := labelWidth + i*140
		fmt.Fprintf(&b, `<rect x="%d" y="36" width="12" height="12" fill="%s"/><text x="%d" y="46">%s</text>`+"\n",
			x, palette[i%len(palette)], x+16, esc(s))
	}
	y := topPad
	for g, bs := range c.bars {
		gh := len(bs)*(barHeight+barGap) - barGap
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n",
			labelWidth-10, y+gh/2, esc(c.groups[g]))
		for _, br := range bs {
			bw := br.value / top * plotW
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, labelWidth, y, bw, barHeight, palette[br.series%len(palette)])
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" dominant-baseline="middle">%s</text>`+"\n",
				float64(labelWidth)+bw+4, y+barHeight/2, strconv.FormatFloat(br.value, 'f', -1, 64))
			y += barHeight + barGap
		}
		y += groupGap
	}
	// Axis with five ticks.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", labelWidth, topPad-4, labelWidth, y)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", labelWidth, y, float64(labelWidth)+plotW, y)
	for i := 0; i <= 5; i++ {
		x := float64(labelWidth) + plotW*float64(i)/5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			x, y, x, y+5, x, y+18, strconv.FormatFloat(top*float64(i)/5, 'f', -1, 64))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// esc escapes text for SVG character data and attribute values.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

func main() {
	title := flag.String("title", "", "chart title")
	width := flag.Int("width", 900, "width in pixels")
	flag.Parse()
	c, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plot: parse standard input:", err)
		os.Exit(1)
	}
	if err := render(os.Stdout, c, *title, *width); err != nil {
		fmt.Fprintln(os.Stderr, "plot: write SVG:", err)
		os.Exit(1)
	}
}
