"""The platform layer: deployments of replicas behind load balancers."""
