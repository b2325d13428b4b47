package main

import (
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		euid int
		want string
	}{
		{0, "Effective uid: 0\n"},
		{1000, "Effective uid: 1000\n"},
	} {
		var b strings.Builder
		if err := report(&b, tc.euid); err != nil {
			t.Fatalf("report(%d): %v", tc.euid, err)
		}
		if got := b.String(); got != tc.want {
			t.Errorf("report(%d) = %q, want %q", tc.euid, got, tc.want)
		}
	}
}
