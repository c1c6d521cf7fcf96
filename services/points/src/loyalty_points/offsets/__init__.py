"""Cash offset at checkout (积分抵现): points pay part of an order in two phases. A hold reserves points from
lots; payment confirms it, or a cancel or the `release-holds` job releases it; refunds of the order return the
points in proportion."""
