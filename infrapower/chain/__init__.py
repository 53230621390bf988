"""PowerChain: power chains of servers, their single points of failure and the fencing they imply (docs/powerchain.md)."""
