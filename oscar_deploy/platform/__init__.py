"""The OSCAR platform on Kubernetes: the objects we generate (one pure builder), the third-party release
manifests with our patches, their YAML rendering for GitOps users, and the Pulumi program that applies them."""
