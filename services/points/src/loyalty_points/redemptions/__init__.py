"""Redemptions: members exchange points for rewards and get one voucher code per unit; a cancel puts the points
back into the very lots they came from."""
