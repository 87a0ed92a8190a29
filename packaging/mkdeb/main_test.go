package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunRefusesUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-arch", "not-this-one"}, "needs -version"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-no-such-flag"}, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("mkdeb %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("mkdeb %q printed %q", tc.args, out.String())
		}
	}
}

func TestRunReportsABadVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-version", "v1", "-out", t.TempDir(), "-root", "../.."}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "semantic version") {
		t.Errorf("exit %d, stderr %q; want 1 and a refusal of the version", code, errb.String())
	}
}
