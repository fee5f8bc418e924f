package admin

// ClientStatus is one of the busiest clients: its address, the name
// dotproxy knows it by, and its queries.
//
// JSON fields:
//
//	address  string  the client's IP address
//	name     string  its name (hosts or lease file, or the router's PTR); omitted when none is known
//	queries  number  its queries since the process started (Status.Queries counts them all)
type ClientStatus struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
	Queries uint64 `json:"queries"`
}

// clientView is one row of the top-clients table.
type clientView struct {
	Name       string // a dash when unknown, as status.js writes it
	Address    string
	Queries    string
	Share      string
	ShareValue float64 // for the <meter>, 0 to 100
}

// newPageClients formats the busiest clients; a client's share is of
// all queries since start, as its count is.
func newPageClients(st Status) []clientView {
	var rows []clientView
	for _, c := range st.Clients {
		name := c.Name
		if name == "" {
			name = dash
		}
		rows = append(rows, clientView{Name: name, Address: c.Address, Queries: formatCount(c.Queries),
			Share: formatPercent(c.Queries, st.Queries), ShareValue: percentOf(c.Queries, st.Queries)})
	}
	return rows
}
