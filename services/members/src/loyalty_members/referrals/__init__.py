"""Invite a friend: referral codes, the referrals invitees registered with, and their outcome."""
