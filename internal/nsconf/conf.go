// Conf stage: a libreswan *.conf file read into sections of key=value
// lines, each with its file:line. Sections start with "conn NAME" or
// "config setup" at column 0; their key=value lines are indented; "#"
// after white space starts a comment; values may be "quoted" or {braced}.
// "include" is refused (every file of the directory is read anyway);
// "version" lines are ignored as libreswan ignores them.

package nsconf

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// form is the file form a section came from: it decides the accepted keys
// and the defaults.
type form uint8

const (
	formConf form = 1 << iota
	formYAML
)

// kv is one key=value line.
type kv struct {
	key string // as written
	val string // unquoted; "" means unset
	src Source
}

// section is one conn as written: a conf "conn NAME" section (or "conn
// %default") or a YAML ipsec interface.
type section struct {
	form form
	name string // "%default" for conn %default
	src  Source
	kvs  []kv
	// errs are syntax errors inside the section: the conn is refused.
	errs []Error
	// down marks a YAML interface with state absent or down: not loaded.
	down bool
}

// defaultSection is the name of libreswan's defaults section.
const defaultSection = "%default"

// maxNameLen bounds connection names (they appear in logs, status and
// interface names).
const maxNameLen = 64

// checkName refuses connection names ovnsec cannot carry everywhere.
func checkName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("connection name %q: want 1 to %d characters", name, maxNameLen)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' ||
			i > 0 && (r == '-' || r == '.')
		if !ok {
			return fmt.Errorf("connection name %q: use letters, digits, '_', and '-' or '.' after the first character", name)
		}
	}
	return nil
}

// readConf reads one .conf file. Errors outside any conn (and about a
// conn header that cannot be read) come back on their own; errors inside
// a conn stay with its section.
func readConf(path string, data []byte, log *slog.Logger) ([]section, []Error) {
	const (
		stNone    = iota // before the first section
		stSection        // in secs[len(secs)-1]
		stSetup          // in config setup: lines ignored
		stSkip           // after a refused column-0 line: its indented lines are skipped
	)
	var (
		secs []section
		errs []Error
		st   = stNone
	)
	for i, line := range strings.Split(string(data), "\n") {
		src := Source{File: path, Line: i + 1}
		line = strings.TrimSuffix(line, "\r")
		if !utf8.ValidString(line) {
			e := errorf(src, "", "not valid UTF-8; save the file as UTF-8 text")
			if st == stSection {
				e.Conn = secs[len(secs)-1].name
				secs[len(secs)-1].errs = append(secs[len(secs)-1].errs, e)
			} else {
				errs = append(errs, e)
			}
			continue
		}
		body := strings.TrimLeft(line, " \t")
		if body == "" || body[0] == '#' {
			continue
		}
		if len(body) == len(line) { // column 0
			fields := strings.Fields(stripComment(line))
			switch {
			case len(fields) == 0:
				errs = append(errs, errorf(src, "", "unexpected character %q at column 0", firstWord(line)))
				st = stSkip
			case fields[0] == "conn" && len(fields) == 2:
				name := fields[1]
				if name != defaultSection {
					if err := checkName(name); err != nil {
						errs = append(errs, errorf(src, "", "%v", err))
						st = stSkip
						continue
					}
				}
				secs = append(secs, section{form: formConf, name: name, src: src})
				st = stSection
			case fields[0] == "conn":
				errs = append(errs, errorf(src, "", "want \"conn NAME\" with one name"))
				st = stSkip
			case fields[0] == "config" && len(fields) == 2 && fields[1] == "setup":
				log.Info("north-south config: config setup ignored: ovnsecd's own flags set what it would", "at", src.String())
				st = stSetup
			case fields[0] == "include":
				errs = append(errs, errorf(src, "", "include is not supported: every *.conf file in the directory is read; put the file there instead"))
				st = stSkip
			case fields[0] == "version":
				st = stNone
			default:
				errs = append(errs, errorf(src, "", "unexpected %q at column 0: a section starts with \"conn NAME\" and its key=value lines are indented", fields[0]))
				st = stSkip
			}
			continue
		}
		switch st {
		case stNone:
			errs = append(errs, errorf(src, "", "key=value line outside a conn section; put it under a \"conn NAME\" line"))
			st = stSkip
		case stSection:
			sec := &secs[len(secs)-1]
			k, v, err := splitKeyValue(body)
			if err != nil {
				sec.errs = append(sec.errs, errorf(src, sec.name, "%v", err))
				continue
			}
			sec.kvs = append(sec.kvs, kv{key: k, val: v, src: src})
		}
	}
	return secs, errs
}

// stripComment removes a "#" comment that starts the line or follows
// white space (outside quotes).
func stripComment(line string) string {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '"':
			quoted = !quoted
		case c == '#' && !quoted && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}

// splitKeyValue reads "key=value", "key = value", "key=\"quoted value\"" or
// "key={a b}", each optionally followed by a comment.
func splitKeyValue(s string) (key, val string, err error) {
	i := strings.IndexByte(s, '=')
	if i < 0 {
		return "", "", fmt.Errorf("%q is not key=value", firstWord(s))
	}
	key = strings.TrimRight(s[:i], " \t")
	if key == "" {
		return "", "", fmt.Errorf("'=' without a key before it")
	}
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	rest := strings.TrimLeft(s[i+1:], " \t")
	var tail string
	switch {
	case rest == "":
	case rest[0] == '"':
		j := strings.IndexByte(rest[1:], '"')
		if j < 0 {
			return "", "", fmt.Errorf("%s: the quoted value has no closing '\"' on this line", key)
		}
		val, tail = rest[1:1+j], rest[2+j:]
	case rest[0] == '{':
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return "", "", fmt.Errorf("%s: '{' without a closing '}' on this line", key)
		}
		val, tail = rest[:j+1], rest[j+1:]
	default:
		j := strings.IndexAny(rest, " \t")
		if j < 0 {
			val = rest
		} else {
			val, tail = rest[:j], rest[j:]
		}
	}
	if tail = strings.TrimLeft(tail, " \t"); tail != "" && tail[0] != '#' {
		return "", "", fmt.Errorf("%s: unexpected %q after the value; quote a value that has spaces", key, firstWord(tail))
	}
	return key, val, nil
}

// checkKey refuses keys that are not lower-case words.
func checkKey(key string) error {
	if key == "" || len(key) > 64 {
		return fmt.Errorf("key %q: want 1 to 64 characters", key)
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("key %q: keys are lower-case letters, digits, '-' and '_'", key)
		}
	}
	return nil
}

// firstWord is the start of s, for messages.
func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		s = f[0]
	}
	if len(s) > 40 {
		n := 40
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "..."
	}
	return s
}
