// PSK stage: each authby=secret conn gets its key from the .secrets
// entries, matched by its ids as libreswan matches them: this host's id
// (leftid=, else left's address) and the peer's (rightid=, else right's
// address). An id in an entry that names the end exactly counts more than
// %any; an entry with no ids or one id matches any other end. The best
// match wins; two best matches with different keys are refused, since
// which one libreswan would pick depends on file order.

package nsconf

import (
	"net/netip"
	"strings"
)

// pskEnds returns the ids a conn's PSK is looked up by. An end is unknown
// (ok false) when it has no explicit id and no address yet
// (left=%defaultroute), or its id is %any.
func pskEnds(c *Conn) (me, him ID, meOK, himOK bool) {
	end := func(id ID, addr netip.Addr) (ID, bool) {
		switch {
		case id.Kind == IDAny:
			return id, false
		case id.Kind != IDNone:
			return id, true
		case addr.IsValid():
			return ID{Kind: IDAddr, Addr: addr}, true
		}
		return ID{}, false
	}
	var local netip.Addr
	if c.Local.Kind == LocalAddr {
		local = c.Local.Addr
	}
	me, meOK = end(c.LocalID, local)
	him, himOK = end(c.RemoteID, c.Remote)
	return
}

// idScore is how well an entry's id matches an end: 2 exactly, 1 as %any.
func idScore(e, id ID, known bool) int {
	switch {
	case e.Kind == IDAny:
		return 1
	case known && sameID(e, id):
		return 2
	}
	return 0
}

// entryScore is how well an entry matches the pair (0: not at all).
func entryScore(ent secretEntry, me, him ID, meOK, himOK bool) int {
	switch len(ent.ids) {
	case 0:
		return 2 // any pair, as %any %any
	case 1:
		// One id: it names either end, the other is any.
		s := 0
		if h := idScore(ent.ids[0], him, himOK); h > 0 {
			s = h + 1
		}
		if m := idScore(ent.ids[0], me, meOK); m > 0 && m+1 > s {
			s = m + 1
		}
		return s
	}
	best := 0
	for i, a := range ent.ids {
		m := idScore(a, me, meOK)
		if m == 0 {
			continue
		}
		for j, b := range ent.ids {
			if h := idScore(b, him, himOK); i != j && h > 0 && m+h > best {
				best = m + h
			}
		}
	}
	return best
}

// matchPSK finds c's key among entries. files names the .secrets files
// read (for the message when none matches).
func matchPSK(c *Conn, entries []secretEntry, files []string) (secretEntry, *Error) {
	me, him, meOK, himOK := pskEnds(c)
	best := 0
	var winners []secretEntry
	for _, e := range entries {
		switch s := entryScore(e, me, him, meOK, himOK); {
		case s > best:
			best, winners = s, []secretEntry{e}
		case s == best && s > 0:
			winners = append(winners, e)
		}
	}
	if best == 0 {
		meText, himText := "%any", "%any"
		if meOK {
			meText = me.String()
		}
		if himOK {
			himText = him.String()
		}
		where := "no .secrets file is in the directory"
		if len(files) > 0 {
			where = "none in " + strings.Join(files, ", ") + " matches"
		}
		e := errorf(c.Source, c.Name, "authby=secret needs a PSK, but %s; add a line %s %s : PSK \"...\" to a .secrets file beside the conf", where, meText, himText)
		return secretEntry{}, &e
	}
	for _, w := range winners[1:] {
		if w.psk.Reveal() != winners[0].psk.Reveal() {
			e := errorf(c.Source, c.Name, "the PSKs at %s and %s match its ids equally well and differ; remove one or give it the exact ids", winners[0].src, w.src)
			return secretEntry{}, &e
		}
	}
	return winners[0], nil
}
