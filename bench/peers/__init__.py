"""What we compare ourselves with: other frameworks' agents on our engines and SFU."""
