/* Small asm functions defined inside C files, with labels the tests can compare against a
 * faulting RIP. Each snippet is a function taking its argument in RDI, like void f(void *):
 *
 *   SNIPPET(do_ud2, ASM_LABEL(ud2_site) "ud2\n ret")
 *   extern char ud2_site[];
 *
 * Labels are global so C can see them; keep them unique per kernel. */
#ifndef ASM_SNIPPET_H
#define ASM_SNIPPET_H

#define SNIPPET_SECTION(section, name, body)                         \
	void name(void *);                                          \
	asm(".pushsection " section ", \"ax\"\n"                   \
	    ".globl " #name "\n"                                    \
	    ".type " #name ", @function\n" #name ":\n" body "\n" \
	    ".popsection\n");

#define SNIPPET(name, body) SNIPPET_SECTION(".text." #name, name, body)
#define USER_SNIPPET(name, body) SNIPPET_SECTION(".user.text", name, body)

/* Inside a snippet body: a global label C can reference after declaring it with LABEL(). */
#define ASM_LABEL(l) ".globl " #l "\n" #l ":\n"
#define LABEL(l) extern char l[]

#endif
