package refresher

import (
	"strconv"
	"strings"
	"time"
)

// noteKind is what the fleet remembers about a token, or about a query's
// grant or refresh token.
type noteKind uint8

const (
	noteNone   noteKind = iota
	noteDead            // the server rejected revision version: nobody sends it again
	noteCool            // revision version failed for a transient reason: leave it alone for the cooldown
	noteClient          // the server refused the client's credentials for revision version: a cooldown, not a death
	noteDone            // the grant or refresh token of a query (a pseudo-ID) belongs to token id now
)

// note is the fleet's note about one token or pseudo-ID. It is written in
// one place (String) and read in one (parseNote); the text never holds a
// secret: a revision number or a random token ID.
type note struct {
	kind    noteKind
	version int64  // noteDead, noteCool, noteClient: the revision it is about
	id      string // noteDone: the token
}

var noteWords = [...]string{noteDead: "dead", noteCool: "cool", noteClient: "client", noteDone: "done"}

// String is the note's stored form: "dead 3", "cool 3", "client 3" or
// "done ID".
func (n note) String() string {
	if n.kind == noteNone || int(n.kind) >= len(noteWords) {
		return ""
	}
	if n.kind == noteDone {
		return noteWords[n.kind] + " " + n.id
	}
	return noteWords[n.kind] + " " + strconv.FormatInt(n.version, 10)
}

// parseNote reads a stored note; anything it does not understand (an
// empty text, a note of another version of this package) is no note.
func parseNote(text string) note {
	word, arg, ok := strings.Cut(text, " ")
	if !ok {
		return note{}
	}
	for kind, w := range noteWords {
		if w == "" || w != word {
			continue
		}
		if noteKind(kind) == noteDone {
			if arg == "" {
				return note{}
			}
			return note{kind: noteDone, id: arg}
		}
		v, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return note{}
		}
		return note{kind: noteKind(kind), version: v}
	}
	return note{}
}

// about reports whether n is a verdict on this revision of a token.
func (n note) about(version int64) bool {
	return n.kind != noteNone && n.kind != noteDone && n.version == version
}

// noteTTL is how long the fleet keeps n.
func (r *Refresher) noteTTL(n note) time.Duration {
	switch n.kind {
	case noteDead:
		return r.cfg.deadMemory
	case noteDone:
		return r.cfg.aliasMemory
	default:
		return r.cfg.cooldown
	}
}
