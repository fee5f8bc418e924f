package upstream

import (
	"strings"
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
	long := new(dns.Msg).SetReply(query("every.test.", dns.TypeTXT))
	long.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "every.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
		Txt: []string{strings.Repeat("Z", 250), strings.Repeat("Y", 250)}}}
	longWire, err := long.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if len(every) >= len(longWire) {
		t.Errorf("the answer of every kind packs to %d octets, the long answer to %d: TestAnswerKeepsNoBuffer reads the former into a new buffer and cannot fail",
			len(every), len(longWire))
	}
}
