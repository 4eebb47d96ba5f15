"""Small helpers every layer may use (docs/architecture.md): a leaf package that imports nothing of
ours, so model/ and corpus/, which import nothing of each other, share them instead of copying."""
