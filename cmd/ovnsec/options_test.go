package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOpts(t *testing.T) {
	tests := []struct {
		args    []string
		vals    map[string]string
		pos     []string
		wantErr string
	}{
		{args: []string{"req", "-u", "host_1"}, vals: map[string]string{"unique": "yes"}, pos: []string{"req", "host_1"}},
		{args: []string{"--dir=/x", "init"}, vals: map[string]string{"dir": "/x"}, pos: []string{"init"}},
		{args: []string{"--dir", "/x", "init", "--force"}, vals: map[string]string{"dir": "/x", "force": "yes"}, pos: []string{"init"}},
		{args: []string{"--di=/x", "--fo", "--ba", "sign", "n"}, vals: map[string]string{"dir": "/x", "force": "yes", "batch": "yes"}, pos: []string{"sign", "n"}},
		{args: []string{"-d", "/x", "-B", "2048", "-k", "ecdsa", "init"}, vals: map[string]string{"dir": "/x", "bits": "2048", "key": "ecdsa"}, pos: []string{"init"}},
		{args: []string{"-d/x", "-bf", "sign", "n", "controller"}, vals: map[string]string{"dir": "/x", "batch": "yes", "force": "yes"}, pos: []string{"sign", "n", "controller"}},
		{args: []string{"sign", "--", "-n"}, vals: map[string]string{}, pos: []string{"sign", "-n"}},
		{args: []string{"--days=30", "self-sign", "n"}, vals: map[string]string{"days": "30"}, pos: []string{"self-sign", "n"}},
		{args: []string{"--d=3"}, wantErr: "ambiguous"},
		{args: []string{"--nope"}, wantErr: "unrecognized option --nope"},
		{args: []string{"-z"}, wantErr: "unrecognized option -z"},
		{args: []string{"--dir"}, wantErr: "missing argument to --dir"},
		{args: []string{"-d"}, wantErr: "missing argument to -d"},
		{args: []string{"--force=yes"}, wantErr: "takes no argument"},
	}
	for _, tc := range tests {
		p, err := parseOpts(tc.args, pkiOptSpecs)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(p.vals, tc.vals) || !reflect.DeepEqual(p.args, tc.pos) {
			t.Errorf("%q: got %v %q, want %v %q", tc.args, p.vals, p.args, tc.vals, tc.pos)
		}
	}
}
