package resolver

import (
	"errors"

	"github.com/miekg/dns"
)

// Error is a resolution failure that says, in Extended DNS Error terms
// (RFC 8914), why the client gets SERVFAIL.
type Error struct {
	Code uint16 // an EDE info-code, dns.ExtendedErrorCode*
	Text string // EXTRA-TEXT for the client: short, no secrets
	Err  error  // the underlying cause, for logs
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Text
	}
	return e.Text + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ServFail builds the SERVFAIL response to req for err. When err carries
// an *Error, its code and text go out as an EDE option; the response has
// an OPT record only when the query had one (RFC 6891 §7).
func ServFail(req *Request, err error) *dns.Msg {
	m := req.Reply(dns.RcodeServerFailure)
	var re *Error
	if errors.As(err, &re) {
		SetEDE(m, req, re.Code, re.Text)
	}
	return m
}

// SetEDE adds an Extended DNS Error option to m, the response to req,
// creating m's OPT record when req had EDNS. A client that did not send
// EDNS gets no OPT record and so no EDE.
func SetEDE(m *dns.Msg, req *Request, code uint16, text string) {
	if !req.EDNS {
		return
	}
	opt := m.IsEdns0()
	if opt == nil {
		m.SetEdns0(dns.DefaultMsgSize, false)
		opt = m.IsEdns0()
	}
	opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: text})
}

// EDE returns the first Extended DNS Error option in m, or nil.
func EDE(m *dns.Msg) *dns.EDNS0_EDE {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			return e
		}
	}
	return nil
}
