// Secrets stage: a libreswan *.secrets file read into PSK entries. An
// entry starts at column 0 and may continue on indented lines: zero or
// more ids, a ":" (its own word, or stuck to an IPv4 or @fqdn id), the
// word PSK and the key in double quotes, or as 0x hex or 0s base64. Other
// kinds of secret (RSA, ECDSA, XAUTH, PPK...) and include lines are
// refused entry by entry; the good entries of the file still count.

package nsconf

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxSecretIDs bounds the ids of one entry.
const maxSecretIDs = 64

// secretEntry is one PSK line: the ids it applies to (none: any pair) and
// the key.
type secretEntry struct {
	ids []ID
	psk Secret
	src Source
}

// token is one word of a secrets entry.
type token struct {
	text   string
	quoted bool
}

// readSecrets reads one .secrets file.
func readSecrets(path string, data []byte) ([]secretEntry, []Error) {
	var (
		entries []secretEntry
		errs    []Error
		cur     []token
		curSrc  Source
		curErr  bool // the current entry already has an error
		open    bool // an entry is being read
	)
	flush := func() {
		if open && !curErr {
			e, err := parseSecretEntry(cur, curSrc)
			if err != nil {
				errs = append(errs, errorf(curSrc, "", "%v", err))
			} else {
				entries = append(entries, e)
			}
		}
		cur, open, curErr = nil, false, false
	}
	for i, line := range strings.Split(string(data), "\n") {
		src := Source{File: path, Line: i + 1}
		line = strings.TrimSuffix(line, "\r")
		body := strings.TrimLeft(line, " \t")
		if body == "" || body[0] == '#' {
			continue
		}
		if len(body) == len(line) { // column 0: a new entry
			flush()
			open, curSrc = true, src
		} else if !open {
			errs = append(errs, errorf(src, "", "indented line without an entry before it; start the entry at column 0"))
			continue
		}
		if curErr {
			continue
		}
		toks, err := tokenizeSecretLine(line)
		if err != nil {
			errs = append(errs, errorf(src, "", "%v", err))
			curErr = true
			continue
		}
		cur = append(cur, toks...)
	}
	flush()
	return entries, errs
}

// tokenizeSecretLine splits a line into words and "quoted strings"; a
// '#' that starts a word starts a comment.
func tokenizeSecretLine(line string) ([]token, error) {
	if !utf8.ValidString(line) {
		return nil, fmt.Errorf("not valid UTF-8; save the file as UTF-8 text")
	}
	var toks []token
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '#':
			return toks, nil
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("a quoted string has no closing '\"' on this line")
			}
			end := i + 1 + j
			if end+1 < len(line) && line[end+1] != ' ' && line[end+1] != '\t' {
				return nil, fmt.Errorf("unexpected text right after a closing '\"'; put a space after it")
			}
			toks = append(toks, token{text: line[i+1 : end], quoted: true})
			i = end + 1
		default:
			j := strings.IndexAny(line[i:], " \t")
			if j < 0 {
				j = len(line) - i
			}
			toks = append(toks, token{text: line[i : i+j]})
			i += j
		}
	}
	return toks, nil
}

// parseSecretEntry reads the words of one entry.
func parseSecretEntry(toks []token, src Source) (secretEntry, error) {
	const want = `want ID ID : PSK "key"`
	if len(toks) > 0 && !toks[0].quoted && toks[0].text == "include" {
		return secretEntry{}, fmt.Errorf("include is not supported: every *.secrets file in the directory is read; put the file there instead")
	}
	sep := -1
	for i, t := range toks {
		if t.quoted {
			continue
		}
		if t.text == ":" {
			sep = i
			break
		}
		if id, ok := strings.CutSuffix(t.text, ":"); ok && id != "" && !strings.Contains(id, ":") {
			// "192.0.2.1: PSK ...": split the colon off.
			toks = append(toks[:i:i], append([]token{{text: id}, {text: ":"}}, toks[i+1:]...)...)
			sep = i + 1
			break
		}
	}
	if sep < 0 {
		return secretEntry{}, fmt.Errorf("no ':' between the ids and the secret; %s", want)
	}
	if len(toks)-sep < 2 {
		return secretEntry{}, fmt.Errorf("nothing after ':'; %s", want)
	}
	if kind := toks[sep+1]; kind.quoted {
		// Never echo it: it is probably the key.
		return secretEntry{}, fmt.Errorf("PSK is missing before the key; %s", want)
	} else if !strings.EqualFold(kind.text, "PSK") {
		return secretEntry{}, fmt.Errorf("%s secrets are not read (only PSK; private keys come with certificates, leftcert=): entry skipped", firstWord(kind.text))
	}
	if len(toks)-sep != 3 {
		return secretEntry{}, fmt.Errorf("want exactly one key after PSK; %s", want)
	}
	key, err := pskValue(toks[sep+2])
	if err != nil {
		return secretEntry{}, err
	}
	if sep > maxSecretIDs {
		return secretEntry{}, fmt.Errorf("%d ids; at most %d per entry", sep, maxSecretIDs)
	}
	e := secretEntry{psk: NewSecret(key), src: src}
	for _, t := range toks[:sep] {
		id, err := parseID(t.text, true)
		if err != nil {
			return secretEntry{}, fmt.Errorf("id %v", err)
		}
		e.ids = append(e.ids, id)
	}
	return e, nil
}

// pskValue decodes the key: "quoted", 0x hex or 0s base64.
func pskValue(t token) (string, error) {
	v := t.text
	switch {
	case t.quoted:
	case strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X"):
		b, err := hex.DecodeString(strings.ReplaceAll(v[2:], "_", ""))
		if err != nil {
			return "", fmt.Errorf("the 0x key is not hex")
		}
		v = string(b)
	case strings.HasPrefix(v, "0s"):
		b, err := base64.StdEncoding.DecodeString(v[2:])
		if err != nil {
			return "", fmt.Errorf("the 0s key is not base64")
		}
		v = string(b)
	default:
		return "", fmt.Errorf(`the key must be in double quotes (PSK "key"), or 0x hex, or 0s base64`)
	}
	if v == "" {
		return "", fmt.Errorf("empty PSK; write the key between the quotes")
	}
	return v, nil
}
