"""Points expiry: each lot is valid to the end of the local day 365 days after it was earned; the nightly job
expires what is left of lots past that instant."""
