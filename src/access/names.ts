// User and group names as the users file, the rules file and `conchd passwd`
// accept them: short, printable, no separators of either file format (`:`,
// `,`, whitespace, `#`), so a name can never split a record.

const USER = /^[A-Za-z0-9._@-]{1,64}$/;
const GROUP = /^[A-Za-z0-9._-]{1,64}$/;

export const USER_NAME_RULE = 'letters, digits, ".", "_", "@" and "-", 1 to 64 of them, not starting with "@"';
export const GROUP_NAME_RULE = 'letters, digits, ".", "_" and "-", 1 to 64 of them';

/** A leading `@` is refused: in the rules file `@x` means the group x. */
export const isUserName = (s: string): boolean => USER.test(s) && !s.startsWith('@');
export const isGroupName = (s: string): boolean => GROUP.test(s);
