package nsconf

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestReadConfSyntax: libreswan's layout (conn at column 0, indented
// keys, comments, quotes, braces) read into sections with their lines.
func TestReadConfSyntax(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	secs, errs := readConf("a.conf", []byte(`version 2.0  # ignored
# a comment
config setup
    protostack=netkey
    logfile="/var/log/pluto.log"

conn %default
	ikev2=insist

conn dc   # the data centre
    left = 192.0.2.10
    right=198.51.100.1	# a comment after a tab
    rightsubnets={10.1.0.0/16 10.2.0.0/16}
    leftid="@host one"
    leftcert=a#b
    esp=
# a column-0 comment inside the section
    auto=start
`), log)
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(secs) != 2 || secs[0].name != "%default" || secs[1].name != "dc" || secs[1].src.Line != 10 {
		t.Fatalf("sections: %+v", secs)
	}
	want := []kv{
		{"left", "192.0.2.10", Source{"a.conf", 11}},
		{"right", "198.51.100.1", Source{"a.conf", 12}},
		{"rightsubnets", "{10.1.0.0/16 10.2.0.0/16}", Source{"a.conf", 13}},
		{"leftid", "@host one", Source{"a.conf", 14}},
		{"leftcert", "a#b", Source{"a.conf", 15}},
		{"esp", "", Source{"a.conf", 16}},
		{"auto", "start", Source{"a.conf", 18}},
	}
	if got := secs[1].kvs; len(got) != len(want) {
		t.Fatalf("kvs %+v", got)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("kv %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	}
	if !strings.Contains(logs.String(), "config setup ignored") || !strings.Contains(logs.String(), "a.conf:3") {
		t.Errorf("config setup not logged with its place: %s", logs.String())
	}
}

// TestReadConfErrors: each syntax error names file:line and what to do;
// errors inside a conn stay with it; a refused header's lines are not
// given to the previous conn.
func TestReadConfErrors(t *testing.T) {
	secs, errs := readConf("b.conf", []byte(`  left=1.2.3.4
include /etc/ipsec.d/*.conf
    right=1.2.3.4
conn a b
    left=1
con typo
    leftsubnet=10.0.0.0/8
conn bad/name
    x=1
conn ok
    leftid="unterminated
    leftsubnets={10.0.0.0/8
    Left=1
    justaword
    right=a b
    =x
`), slog.New(slog.DiscardHandler))
	wantFile := []string{
		"b.conf:1: key=value line outside a conn section",
		"b.conf:2: include is not supported",
		"b.conf:4: want \"conn NAME\" with one name",
		"b.conf:6: unexpected \"con\" at column 0",
		"b.conf:8: connection name \"bad/name\"",
	}
	if len(errs) != len(wantFile) {
		t.Fatalf("file errors: %v", errs)
	}
	for i, w := range wantFile {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want prefix %q", i, errs[i].Error(), w)
		}
	}
	if len(secs) != 1 || secs[0].name != "ok" || len(secs[0].kvs) != 0 {
		t.Fatalf("sections: %+v", secs)
	}
	wantConn := []string{
		"b.conf:11: conn ok: leftid: the quoted value has no closing",
		"b.conf:12: conn ok: leftsubnets: '{' without a closing '}'",
		"b.conf:13: conn ok: key \"Left\": keys are lower-case",
		"b.conf:14: conn ok: \"justaword\" is not key=value",
		"b.conf:15: conn ok: right: unexpected \"b\" after the value; quote a value that has spaces",
		"b.conf:16: conn ok: '=' without a key",
	}
	if len(secs[0].errs) != len(wantConn) {
		t.Fatalf("conn errors: %v", secs[0].errs)
	}
	for i, w := range wantConn {
		if !strings.HasPrefix(secs[0].errs[i].Error(), w) {
			t.Errorf("conn error %d = %q, want prefix %q", i, secs[0].errs[i].Error(), w)
		}
	}
}

// TestReadConfOddBytes: CRLF line ends are read, invalid UTF-8 and odd
// column-0 characters are refused, never a panic.
func TestReadConfOddBytes(t *testing.T) {
	secs, errs := readConf("c.conf", []byte("conn a\r\n    left=1.2.3.4\r\n\v\n    right=\xff\nconn b\n"), slog.New(slog.DiscardHandler))
	if len(secs) != 2 || len(secs[0].kvs) != 1 || secs[0].kvs[0].val != "1.2.3.4" {
		t.Fatalf("sections %+v", secs)
	}
	if len(errs) != 2 || errs[0].Source.Line != 3 || errs[1].Source.Line != 4 {
		t.Errorf("file errors %v", errs)
	}
	if len(secs[0].errs) != 0 {
		t.Errorf("conn a errors %v (the \\xff line follows a refused column-0 line)", secs[0].errs)
	}
	_, errs = readConf("d.conf", []byte("conn a\n    right=\xff\n"), slog.New(slog.DiscardHandler))
	if len(errs) != 0 {
		t.Errorf("errs %v", errs)
	}
	secs, _ = readConf("d.conf", []byte("conn a\n    right=\xff\n"), slog.New(slog.DiscardHandler))
	if len(secs[0].errs) != 1 || !strings.Contains(secs[0].errs[0].Error(), "d.conf:2: conn a: not valid UTF-8") {
		t.Errorf("errs %v", secs[0].errs)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"dc", "dc-1", "dc.gw", "DC_2", "a"} {
		if err := checkName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-dc", ".dc", "a b", "a/b", "%x", strings.Repeat("a", 65), "é"} {
		if err := checkName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
