// An expect script written for conman, used unchanged with conman and conch
// against both conmand and conchd. $env(CLIENT) is the client command line.

/** Written as for conman: spawn the client, wait for the opened line, type, expect echo, close. */
export const EXPECT_SCRIPT = `
set timeout 20
eval spawn $env(CLIENT) n1
expect {
  -re {<ConMan> Connection to console \\[n1\\] opened\\.\\r\\n} {}
  "ERROR:" { exit 10 }
  timeout { exit 11 }
}
send "expect-ping\\r"
expect {
  "expect-ping" {}
  timeout { exit 12 }
}
send "&."
expect {
  -re {<ConMan> Connection to console \\[n1\\] closed\\.} {}
  timeout { exit 13 }
}
expect eof
exit 0
`;
