package upstream

import (
	"testing"

	"github.com/miekg/dns"
)

// TestEveryKindFitsTheLongAnswersBuffer keeps TestAnswerKeepsNoBuffer
// able to fail: the DoT reader reads an answer into the buffer the last
// one grew only when it is no longer, so the answer of every kind, as
// the test server packs it, must be shorter than the long TXT answer
// read before it. A record added to answerOfEveryKind could otherwise
// make it the longer, read into a new buffer, and the test pass whatever
// the unpacking keeps.
func TestEveryKindFitsTheLongAnswersBuffer(t *testing.T) {
	every, err := answerOfEveryKind(t, query("every.test.", dns.TypeANY)).Pack()
	if err != nil {
		t.Fatal(err)
	}
	// TestAnswerKeepsNoBuffer's long answer.
	longWire, err := longAnswer(query("every.test.", dns.TypeTXT)).Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(every) >= len(longWire) {
		t.Errorf("the answer of every kind packs to %d octets, the long answer to %d: TestAnswerKeepsNoBuffer reads the former into a new buffer and cannot fail",
			len(every), len(longWire))
	}
}
