package admin

// ForwardStatus is one forwarding rule: the domains it sends to its own
// servers instead of the upstreams, and those servers' state. router:'s
// rule is one of them.
//
// JSON fields:
//
//	domains  array of strings  the forwarded domains, as configured
//	servers  array             one UpstreamStatus per server, in config order;
//	                           healthy is false while its queries fail in a row
//	                           (no prober checks them), tls_name is set for
//	                           DNS over TLS, open_conns is 0 for plain DNS
type ForwardStatus struct {
	Domains []string         `json:"domains"`
	Servers []UpstreamStatus `json:"servers"`
}

// forwardView is one row of the forwarding table: a rule's server.
type forwardView struct {
	Domains string // the rule's domains, comma-separated
	upstreamView
}

// newPageForward formats the rules' servers, one row each; a server's
// share is of its own rule's answers.
func newPageForward(st Status) []forwardView {
	var rows []forwardView
	for _, f := range st.Forward {
		var answered uint64
		for _, s := range f.Servers {
			answered += s.Queries
		}
		for _, s := range f.Servers {
			rows = append(rows, forwardView{Domains: joinDomains(f.Domains), upstreamView: newUpstreamView(s, answered, st.Time)})
		}
	}
	return rows
}

// maxShownDomains bounds the domains a row lists; router:'s rule alone
// has two dozen reverse zones.
const maxShownDomains = 5

func joinDomains(d []string) string {
	s := ""
	for i, name := range d {
		if i == maxShownDomains {
			return s + ", …"
		}
		if i > 0 {
			s += ", "
		}
		s += name
	}
	return s
}
