"""Points lottery (积分抽奖): members spend points on a draw; prizes are bonus points, a reward from the catalog
or nothing, chosen by weight with a cryptographically secure random roll, each prize with its own stock. Every
draw is recorded with the weights in force, for audit."""
