package filter

import (
	"context"
	"log/slog"
	"strings"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// Middleware returns the filter as resolver middleware. Local names are
// answered before anything else; then a query the client's lists block
// gets the block answer; the others go to next, and an answer whose
// CNAME chain reaches a blocked name is blocked too.
//
// In front of a resolver with a fast path (resolver.Fast: the cache) the
// filter has one too; in front of one without, it has none, so that the
// listener does not offer it queries only to have them declined.
func (f *Filter) Middleware() resolver.Middleware {
	return func(next resolver.Resolver) resolver.Resolver {
		if fast, ok := next.(resolver.Fast); ok {
			return &fastFiltering{filtering{f: f, next: next}, fast}
		}
		return &filtering{f: f, next: next}
	}
}

// filtering is the filter in front of next.
type filtering struct {
	f    *Filter
	next resolver.Resolver
}

var _ resolver.Resolver = (*filtering)(nil)

// Resolve implements resolver.Resolver.
func (r *filtering) Resolve(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if len(q.Question) != 1 {
		return r.next.Resolve(ctx, q)
	}
	f := r.f
	qname := lowerASCII(q.Question[0].Name)
	if m := f.local.answer(q, qname); m != nil {
		f.answeredLocally.Add(1)
		resolver.InfoFrom(ctx).SetLocal()
		return m, nil
	}
	rules, grp := f.rulesFor(ctx)
	v := rules.match(strings.TrimSuffix(qname, "."))
	switch {
	case v.blocked():
		return f.block(ctx, q, grp, v, v.rule+".", ""), nil
	case v.allowed():
		f.logMatch(ctx, "allowed", q, grp, v, "")
	}
	resp, err := r.next.Resolve(ctx, q)
	if err != nil || resp == nil || v.allowed() {
		return resp, err // an allowed name is allowed with its CNAMEs
	}
	if cv, target := cnameVerdict(resp, rules); cv.blocked() {
		f.cloaked.Add(1)
		return f.block(ctx, q, grp, cv, qname, target), nil
	}
	return resp, nil
}

// cnameVerdict judges the targets of the CNAME records in resp's answer,
// the chain from the query name to the name that has the data. The first
// blocked target decides, with its name; an allowed target allows only
// itself.
func cnameVerdict(resp *dns.Msg, rules ruleSet) (verdict, string) {
	for _, rr := range resp.Answer {
		c, ok := rr.(*dns.CNAME)
		if !ok {
			continue
		}
		target := strings.TrimSuffix(lowerASCII(c.Target), ".")
		if v := rules.match(target); v.blocked() {
			return v, target
		}
	}
	return verdict{}, ""
}

// block counts and logs the blocking of q by v and returns the block
// answer, whose SOA zone is given. cname is the CNAME target that v
// matched, when the block is for cloaking.
func (f *Filter) block(ctx context.Context, q *dns.Msg, grp string, v verdict, zone, cname string) *dns.Msg {
	f.blocked.Add(1)
	v.list.blocked.Add(1)
	resolver.InfoFrom(ctx).SetBlocked(v.list.name)
	f.logMatch(ctx, "blocked", q, grp, v, cname)
	text := "blocked by " + v.ruleText()
	if cname != "" {
		text = "CNAME " + cname + " " + text
	}
	return blockReply(q, f.mode, zone, text)
}

// logMatch logs at debug what a rule did to a query, with the rule.
func (f *Filter) logMatch(ctx context.Context, msg string, q *dns.Msg, grp string, v verdict, cname string) {
	if !f.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []any{"qname", q.Question[0].Name, "qtype", dns.Type(q.Question[0].Qtype).String(),
		"list", ListName(v.list.source), "rule", v.ruleText()}
	if client, ok := resolver.ClientFrom(ctx); ok {
		attrs = append(attrs, "client", client)
	}
	if grp != "" {
		attrs = append(attrs, "group", grp)
	}
	if cname != "" {
		attrs = append(attrs, "cname", cname)
	}
	f.log.DebugContext(ctx, msg, attrs...)
}

// rulesFor returns the rule set for the query's client, and the name of
// its group ("" for the global lists).
func (f *Filter) rulesFor(ctx context.Context) (ruleSet, string) {
	if len(f.groups) == 0 {
		return f.global, ""
	}
	return f.rulesForAddr(resolver.ClientFrom(ctx))
}
