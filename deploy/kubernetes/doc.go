// Package kubernetes checks the Kubernetes manifests of a Subordinate
// cluster in this directory, offline: Load decodes every object strictly
// into its API type (an unknown or misspelt field is an error, as it
// would be for the API server), and Check finds what would break the
// cluster, such as a --cluster-size that is not the StatefulSet's
// replicas or a worker without its cluster port. The test runs both on
// the manifests; README.md says how to deploy them.
package kubernetes
