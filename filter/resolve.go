package filter

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/wire"
	"github.com/dotproxy/dotproxy/resolver"
)

// Middleware returns the filter as resolver middleware. Local names are
// answered before anything else; then a query the client's lists block
// gets the block answer; the others go to next, and an answer whose
// CNAME chain reaches a blocked name is blocked too.
func (f *Filter) Middleware() resolver.Middleware {
	return func(next resolver.Resolver) resolver.Resolver {
		return &filtering{f: f, next: next}
	}
}

// Local answers req from the local names alone, as the middleware would:
// local records, the hosts files' names and the locally served zones
// that no forward rule takes; nil when req's name is none of these. No
// list is consulted: it is for dotproxy's own lookups (an upstream's host
// name), which must not leave the house when the name is the house's,
// and which a list that blocks DNS-over-HTTPS resolvers must not cut off.
func (f *Filter) Local(req *resolver.Request) *dns.Msg {
	return f.local.Load().answer(req, lowerASCII(req.Name))
}

// filtering is the filter in front of next.
type filtering struct {
	f    *Filter
	next resolver.Resolver
}

var _ resolver.Resolver = (*filtering)(nil)

// Resolve implements resolver.Resolver. Local and blocked names are
// answered at once, Inline or not; for the others it waits only as long
// as next does, and passes on next's resolver.ErrWouldWait untouched,
// before counting or logging anything.
func (r *filtering) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	f := r.f
	qname := lowerASCII(req.Name)
	if m := f.local.Load().answer(req, qname); m != nil {
		f.answeredLocally.Add(1)
		req.Info.SetLocal()
		return resolver.Response{Msg: m}, nil
	}
	rules, grp := f.rulesFor(req.Client)
	v := rules.match(strings.TrimSuffix(qname, "."))
	if v.blocked() {
		return resolver.Response{Msg: f.block(ctx, req, grp, v, v.rule+".", "")}, nil
	}
	resp, err := r.next.Resolve(ctx, req)
	if err == resolver.ErrWouldWait {
		return resp, err // this request comes back, not inline
	}
	if v.allowed() {
		f.logMatch(ctx, "allowed", req, grp, v, "")
		return resp, err // an allowed name is allowed with its CNAMEs
	}
	if err != nil || len(rules) == 0 {
		return resp, err
	}
	if cv, target := cnameVerdict(resp, rules); cv.blocked() {
		f.cloaked.Add(1)
		return resolver.Response{Msg: f.block(ctx, req, grp, cv, qname, target)}, nil
	}
	return resp, nil
}

// cnameVerdict judges the targets of the CNAME records in resp's answer
// section, the chain from the query name to the name that has the data.
// The first blocked target decides, with its name; an allowed target
// allows only itself.
func cnameVerdict(resp resolver.Response, rules ruleSet) (verdict, string) {
	if resp.Wire != nil {
		if v, target, err := wireCNAMEVerdict(resp.Wire, rules); err == nil {
			return v, target
		}
		m, err := resp.Unpack()
		if err != nil {
			return verdict{}, "" // nobody can read it; the listener passes it on as it is
		}
		resp = resolver.Response{Msg: m}
	}
	if resp.Msg == nil {
		return verdict{}, ""
	}
	for _, rr := range resp.Msg.Answer {
		if c, ok := rr.(*dns.CNAME); ok {
			if v, target := targetVerdict(c.Target, rules); v.blocked() {
				return v, target
			}
		}
	}
	return verdict{}, ""
}

// errShortAnswer: a wire answer without a whole header.
var errShortAnswer = errors.New("filter: answer shorter than a DNS header")

// wireCNAMEVerdict is cnameVerdict for an answer in wire form, read in
// place: a cache hit's answer is judged without unpacking it.
func wireCNAMEVerdict(m []byte, rules ruleSet) (verdict, string, error) {
	if len(m) < wire.HeaderLen {
		return verdict{}, "", errShortAnswer
	}
	off, err := wire.SkipName(m, wire.HeaderLen)
	if err != nil {
		return verdict{}, "", err
	}
	off += 4 // type and class
	for range binary.BigEndian.Uint16(m[6:]) {
		rr, err := wire.NextRecord(m, off)
		if err != nil {
			return verdict{}, "", err
		}
		if rr.Type == dns.TypeCNAME {
			name, _, err := dns.UnpackDomainName(m, rr.Data)
			if err != nil {
				return verdict{}, "", err
			}
			if v, target := targetVerdict(name, rules); v.blocked() {
				return v, target, nil
			}
		}
		off = rr.End
	}
	return verdict{}, "", nil
}

// targetVerdict judges one CNAME target, given in presentation form.
func targetVerdict(name string, rules ruleSet) (verdict, string) {
	target := strings.TrimSuffix(lowerASCII(name), ".")
	return rules.match(target), target
}

// block counts and logs the blocking of req by v and returns the block
// answer, whose SOA zone is given. cname is the CNAME target that v
// matched, when the block is for cloaking.
func (f *Filter) block(ctx context.Context, req *resolver.Request, grp string, v verdict, zone, cname string) *dns.Msg {
	f.blocked.Add(1)
	v.list.blocked.Add(1)
	req.Info.SetBlocked(v.list.name)
	f.logMatch(ctx, "blocked", req, grp, v, cname)
	text := "blocked by " + v.ruleText()
	if cname != "" {
		text = "CNAME " + cname + " " + text
	}
	return blockReply(req, f.mode, zone, text)
}

// logMatch logs at debug what a rule did to a query, with the rule.
func (f *Filter) logMatch(ctx context.Context, msg string, req *resolver.Request, grp string, v verdict, cname string) {
	if !f.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []any{"qname", req.Name, "qtype", dns.Type(req.Qtype).String(),
		"list", ListName(v.list.source), "rule", v.ruleText()}
	if req.Client.IsValid() {
		attrs = append(attrs, "client", req.Client)
	}
	if grp != "" {
		attrs = append(attrs, "group", grp)
	}
	if cname != "" {
		attrs = append(attrs, "cname", cname)
	}
	f.log.DebugContext(ctx, msg, attrs...)
}
