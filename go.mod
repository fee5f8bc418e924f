module github.com/dotproxy/dotproxy

go 1.26.8

require (
	github.com/hashicorp/go-multierror v1.1.1
	github.com/miekg/dns v1.1.73
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/net v0.57.0
)

require (
	github.com/hashicorp/errwrap v1.0.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
