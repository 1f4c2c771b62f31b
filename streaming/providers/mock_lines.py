"""The mock's phrase banks: hooks, body sentences and calls to action, written to work for any topic.

Body sentences speak of the topic as "it" or "this", so they read well whatever the creator asked for; the topic
itself is worked into the hook only (see mock.py). Every sentence is distinct across all banks: a script never
says the same sentence twice. Tips are imperatives, so a lead ("Next,") can go before them in lower case.
"""

from __future__ import annotations

from streaming.protocol import Platform

# ---------------------------------------------------------------- hook: one topic sentence per kind of topic

# {t} is the topic in quotes (a noun phrase, or a shortened topic).
PHRASE_HOOKS = [
    "Let's talk about {t}.",
    "Here is what nobody tells you about {t}.",
    "Everything you need to know about {t}, fast.",
    "If {t} has ever confused you, this is for you.",
    "Today it is all about {t}.",
]
# {t} is a "how / why / what ..." clause in lower case, unquoted.
CLAUSE_HOOKS = [
    "Here is {t}.",
    "Let me show you {t}.",
    "Nobody explains {t} clearly, so let me.",
    "This is {t}, in plain words.",
]
# {t} is the creator's question, as its own sentence; an answer line follows when there is room.
QUESTION_HOOKS = ["{t}"]
QUESTION_FOLLOW_UPS = [
    "Let's answer that properly.",
    "Here is the honest answer.",
    "The answer is simpler than you think.",
]
# The shortest forms, for scripts of a few seconds.
TINY_HOOKS = {"phrase": "All about {t}.", "clause": "Here is {t}.", "question": "{t}"}
AUDIENCE_LINE = "This one is for {t}."

# A bold first line, by platform (the hook's opener on longer scripts).
OPENERS: dict[Platform, list[str]] = {
    Platform.TIKTOK: ["Stop scrolling.", "Wait, do not skip this one.", "Okay, listen up."],
    Platform.YOUTUBE_SHORTS: ["Quick one today.", "Here is a fast one.", "One idea, no fluff."],
    Platform.INSTAGRAM_REELS: [
        "Real talk for a second.",
        "Save yourself the trial and error.",
        "POV: it finally clicks.",
    ],
    Platform.YOUTUBE: ["Welcome back to the channel.", "Hey everyone, welcome back.", "Welcome in, grab a seat."],
    Platform.LINKEDIN: ["A lesson that took me years to learn.", "A short reflection from this week."],
}
# What the viewer gets from staying, by platform.
PROMISES: dict[Platform, list[str]] = {
    Platform.TIKTOK: ["It is easier than you think.", "Most people get this wrong."],
    Platform.YOUTUBE_SHORTS: ["One clear idea, and you can use it today.", "Stick around, this one is quick."],
    Platform.INSTAGRAM_REELS: ["You will want to save this one.", "Trust me, this one is relatable."],
    Platform.YOUTUBE: [
        "By the end of this video, you will know exactly where to start and what to skip.",
        "Stay to the end, because the last part ties everything together.",
    ],
    Platform.LINKEDIN: ["Here is what I have learned, in practical terms.", "The lesson applies well beyond it."],
}
# YouTube long-form: the hook lists what is coming ({t} is the list of chapter titles).
OVERVIEW_LINE = "Here is the plan: {t}."
# Chapter titles, each with the line that opens it; the first and last keep their places.
CHAPTERS = {
    "The basics": "Everything else rests on this, so let's get it right.",
    "The setup": "A good setup makes every later step easier.",
    "Common mistakes": "These are the ones I see every single week.",
    "A routine you can keep": "A routine only helps if it survives a busy week.",
    "Tools worth having": "You need fewer tools than the internet suggests.",
    "What experts do differently": "The difference is smaller than you think, and it is learnable.",
    "Troubleshooting": "When something goes wrong, work through it in this order.",
    "Measuring progress": "If you cannot see progress, it is hard to keep going.",
    "Small upgrades": "These are cheap changes with an outsized effect.",
    "Saving time": "Most of the time goes to steps you can shorten.",
    "When things go wrong": "Bad days happen, and they are part of the process.",
    "Building the habit": "Motivation fades, so we build something that does not need it.",
    "Advanced tricks": "Only move on to these once the basics feel boring.",
    "A worked example": "Let's go through one real attempt from start to finish.",
    "Myths to forget": "Some popular advice does more harm than good.",
    "Your first week": "Here is what a realistic first week looks like.",
    "Going further": "Once you are comfortable, this is where to look next.",
    "Putting it together": "Let's connect everything we have covered.",
}

# ---------------------------------------------------------------- body

TIPS = [
    "Start with the basics and keep it simple.",
    "Pick one small part and get that right before you add anything else.",
    "Write down what worked, because memory is a poor notebook.",
    "Keep your tools ready so nothing breaks your focus.",
    "Measure once, adjust one thing, then measure again.",
    "Give it a fixed time every day instead of waiting for the mood.",
    "Copy someone good first, then make it your own.",
    "Slow down for the first few tries.",
    "Set one goal you can check by the end of the week.",
    "Keep the first version rough and finish it anyway.",
    "Change one thing at a time, or you will never know what helped.",
    "Ask someone who has done it for ten minutes of their time.",
    "Clear the space around you before you begin.",
    "Use a timer, not willpower.",
    "Say out loud what you are about to do, then do it.",
    "Take a photo of every attempt so you can compare.",
    "Plan the next step before you stop for the day.",
    "Do the boring part first, while your energy is high.",
    "Stop while it still feels easy, and come back tomorrow.",
    "Skip the expensive gear until the basics feel natural.",
    "Keep a short checklist and actually use it.",
    "Practise the hardest five minutes on their own.",
    "Watch one expert closely and notice where they slow down.",
    "Set up the night before so starting costs you nothing.",
    "Teach it to a friend, and notice where you stumble.",
    "Repeat what worked yesterday before you try something new.",
    "Break it into steps small enough to finish in ten minutes.",
    "Rest when your results get worse, not when you feel bored.",
    "Check your setup against a simple reference first.",
    "Keep your notes short enough to read at a glance.",
    "Start earlier than feels necessary.",
    "Keep what works and drop the rest.",
    "Look for the smallest change with the biggest effect.",
    "Count your attempts, not your hours.",
    "Give yourself a deadline and tell someone about it.",
    "Review your last attempt before you begin the next one.",
    "Make the first step so easy you cannot say no.",
    "Protect the first ten minutes from every distraction.",
    "Choose one reliable source and ignore the noise for now.",
    "Finish one round completely before you judge it.",
    "Keep a spare of everything you cannot work without.",
    "Celebrate the small wins out loud.",
    "Stay curious when something fails.",
    "Go back to basics whenever you feel stuck.",
    "Write the question down before you look for the answer.",
    "Prepare everything you need before you start the clock.",
    "Record your first try so you have something to beat.",
    "Pick a fixed place for it and keep it tidy.",
    "Double-check the one step that failed last time.",
    "Borrow before you buy, at least for the first month.",
    "Lower the bar for starting and raise it for finishing.",
    "Keep one page of rules you have learned the hard way.",
    "Schedule a short review at the end of every week.",
    "Learn the names of the things you use, it speeds everything up.",
    "Warm up with something easy before the hard part.",
    "Leave yourself a note about where to pick up next time.",
    "Cut every step that does not change the result.",
    "Test your idea small before you go all in.",
    "Follow the instructions exactly once before you improvise.",
    "Find one person at your level and compare notes weekly.",
    "Keep the setup identical so only your skill changes.",
    "Tidy up as you go instead of at the end.",
    "Decide in advance what good enough looks like.",
    "Put the most important step at the start of your day.",
    "Turn your phone face down while you work on it.",
    "Track one number that shows real progress.",
    "Redo your weakest step three times in a row.",
    "Ask for feedback on one specific thing, not everything.",
    "Keep a list of questions and answer one a day.",
    "Expect the middle to feel slow and keep going anyway.",
]
REASONS = [
    "Most people skip this step, and that is exactly why they struggle.",
    "The secret is consistency, not perfection.",
    "Small details add up faster than you expect.",
    "Your first attempts are data, not a verdict.",
    "Progress hides in the repetitions nobody sees.",
    "Once the basics are automatic, everything else gets easier.",
    "Rushing is the most expensive mistake here.",
    "The gap between good and great is usually patience.",
    "It sounds obvious, but almost nobody does it.",
    "This one habit saves hours later on.",
    "That is where most of the results come from.",
    "If it feels awkward at first, that means you are learning.",
    "Confidence comes after the practice, not before it.",
    "Simple beats clever almost every time.",
    "What you do most days matters more than what you do once.",
    "The fastest way forward is usually the boring one.",
    "Every shortcut here costs you twice later.",
    "Nobody gets this right on day one.",
    "Your future self will thank you for it.",
    "It removes the guesswork completely.",
    "That way, every mistake teaches you something specific.",
    "Attention is the real skill underneath all of this.",
    "Good habits make good results almost automatic.",
    "It is the difference between hoping and knowing.",
    "Half the problems people have start right here.",
    "Energy follows momentum, not the other way round.",
    "That is how the pros stay consistent.",
    "The results compound quietly in the background.",
    "Clarity beats effort when you are starting out.",
    "Once you see it, you cannot unsee it.",
    "You learn more from ten quick tries than from one perfect plan.",
    "A calm start makes the whole thing easier.",
    "Most of the difficulty is in the first two weeks.",
    "The basics carry further than any advanced trick.",
    "Every expert you admire started exactly where you are.",
    "You remove friction, and the habit takes care of itself.",
    "A clear next step beats a perfect long-term plan.",
    "Mistakes are cheap when you catch them early.",
    "The people who stick with it are rarely the most talented.",
    "Tired decisions are usually bad decisions.",
    "Doing it often makes each time a little easier.",
    "Fewer choices mean more energy for the part that matters.",
    "A tidy setup quietly removes a dozen small decisions.",
    "It feels slow at first, then suddenly it clicks.",
    "Feedback turns effort into actual improvement.",
    "You can only improve what you actually notice.",
    "That small pause is where most of the quality comes from.",
    "Nobody remembers the perfect attempt, only the finished one.",
    "When the stakes are low, you learn faster.",
    "Patience here saves frustration later.",
]
EXAMPLES = [
    "Here is a quick example you can copy right away.",
    "I tried this for a week, and the change was obvious by day three.",
    "A friend of mine did exactly this and halved the time it took.",
    "Picture doing it twice, once rushed and once slowly, and compare.",
    "Think of it like learning to ride a bike: wobbly, then suddenly easy.",
    "Last month I ignored this advice, and I paid for it.",
    "When I started, I did the opposite, and it showed.",
    "One viewer wrote to say this fixed a problem she had for years.",
    "My first attempt was a mess, and the fifth one was not.",
    "Compare a rushed morning with a prepared one, and you get the idea.",
    "The first time I measured it, the numbers surprised me.",
    "Someone in the comments tried it and sent me the before and after.",
    "It is like cooking with everything chopped before the pan is hot.",
    "In my own notes, the best days all started the same way.",
    "Think of a musician who practises scales before the song.",
    "I once spent a whole weekend on this, and an hour would have done.",
    "A beginner I helped got it right on the third try with this.",
    "Try it side by side with your usual way and see which wins.",
    "A colleague swore by the opposite approach, until she tried this.",
    "My notebook from the first month is full of the same mistake.",
    "The week I stopped rushing, everything improved at once.",
    "I asked five experienced people, and four gave the same advice.",
    "One of my worst attempts taught me the most.",
    "On a busy day, this is the one step I still never skip.",
    "Someone once showed me this in two minutes, and it stuck.",
    "Think of a pilot running a checklist before every flight.",
    "The first time it worked, I had changed only one thing.",
    "A student of mine kept a tally and doubled her pace in a month.",
    "I used to think this was optional, and I was wrong.",
    "It is like tuning a guitar before you play.",
]
PUNCHES = [
    "Game changer.",
    "Seriously, try it.",
    "Watch what happens.",
    "This part is gold.",
    "No fancy tools needed.",
    "Trust the process.",
    "That one surprised me.",
    "Small change, big difference.",
    "Here is the twist.",
    "Do not skip this part.",
    "It works every time.",
    "Write that down.",
    "Easy win.",
    "You will feel the difference.",
    "Now it gets good.",
    "Simple, but powerful.",
]
VISUALS = [
    "Picture the before and after side by side.",
    "Film yourself once and watch it back without sound.",
    "Imagine your space set up exactly the way you need it.",
    "See how much calmer it looks when every step is ready?",
    "Look at the difference in the second shot.",
    "Freeze on that moment, because that is the whole trick.",
    "Picture your future self doing it without thinking.",
    "Now imagine doing that every single day.",
    "Notice how small the movement actually is.",
    "Zoom in on the details, because that is where it happens.",
]
INSIGHTS = [
    "The teams I have worked with improved fastest when they measured less and reflected more.",
    "What looks like talent is usually a well-kept routine.",
    "The most useful skill here is knowing what to ignore.",
    "Process beats heroics over any period longer than a month.",
    "Most plans fail at the handover, not at the idea.",
    "Clear ownership removes half of the friction.",
    "Consistency is a strategy, not a personality trait.",
    "The best results I have seen came from small, repeatable steps.",
    "Feedback is only useful when it arrives quickly.",
    "Saying no to good ideas makes room for great ones.",
]
EVIDENCE = [
    "In one project, a ten-minute weekly review cut rework by a third.",
    "Three out of four people I asked had never tried this.",
    "Over six months, the simple version outperformed the complex one.",
    "A small pilot with five people told us more than a month of planning.",
    "We tracked it for twelve weeks, and the trend was clear by week four.",
    "After two quarters, the teams that kept it up shipped noticeably faster.",
    "The numbers were modest at first and then doubled within a year.",
    "One client saved roughly four hours a week with this change alone.",
]
QUESTIONS = [
    "Ever wondered why it feels so hard at the start?",
    "So what actually makes the difference?",
    "Sounds simple, right?",
    "Why does nobody mention this?",
    "What happens if you skip it?",
    "Have you noticed how the best results look effortless?",
    "What would change if you did this every day?",
    "Does that mean you need expensive gear?",
    "How do you know it is working?",
    "Want to know the part that surprised me most?",
    "Where do most people go wrong?",
    "Is it really that easy?",
]
TRANSITIONS = [
    "Let me show you what I mean.",
    "Here is the thing.",
    "Stay with me on this one.",
    "Now, this is important.",
    "Let's slow down here for a second.",
    "This next part is where it clicks.",
    "Here is how that looks in practice.",
    "Let me be honest about this part.",
    "Quick side note before we move on.",
    "This is the part I wish I had known earlier.",
    "Now let's put that to work.",
    "Here is a detail most guides leave out.",
]
BANKS: dict[str, list[str]] = {
    "tip": TIPS,
    "reason": REASONS,
    "example": EXAMPLES,
    "punch": PUNCHES,
    "visual": VISUALS,
    "insight": INSIGHTS,
    "evidence": EVIDENCE,
    "question": QUESTIONS,
    "transition": TRANSITIONS,
}
# Paragraph shapes by platform: each paragraph is a list of bank names, cycled through the body.
PARAGRAPHS: dict[Platform, list[tuple[str, ...]]] = {
    Platform.TIKTOK: [("tip", "punch"), ("tip", "reason"), ("tip", "example", "punch")],
    Platform.YOUTUBE_SHORTS: [("tip", "reason"), ("tip", "example"), ("tip", "reason")],
    Platform.INSTAGRAM_REELS: [("visual", "tip"), ("tip", "reason", "punch"), ("example", "tip")],
    Platform.YOUTUBE: [
        ("transition", "tip", "reason"),
        ("question", "example", "tip"),
        ("tip", "reason", "example"),
        ("insight", "visual", "tip"),
        ("evidence", "reason", "punch"),
    ],
    Platform.LINKEDIN: [("insight", "evidence"), ("tip", "reason"), ("insight", "example")],
}
# Short-form videos count their points out loud ("First, ...").
ORDINALS = ["First,", "Second,", "Third,", "Fourth,", "Fifth,", "Sixth,", "Seventh,", "Eighth,", "Ninth,", "Tenth,"]
# Once every bank is spent (the longest scripts), a tip comes back behind one of these, never twice the same way.
LEADS = [
    "Also,",
    "Next,",
    "On top of that,",
    "And remember,",
    "One more thing:",
    "Then,",
    "After that,",
    "Equally important,",
    "Do not forget:",
    "Here is another one:",
    "From there,",
    "And again,",
]
# ... and reasons come back as callbacks, which long videos make anyway.
CALLBACKS = ["As I said earlier,", "Remember,", "Like I mentioned before,", "Once again,"]
# End-of-body lines of 1 to 8 words: the body lands on its exact length with a whole sentence.
CLOSERS: dict[int, list[str]] = {
    1: ["Really.", "Simple.", "Honestly."],
    2: ["Try it.", "Trust me.", "It works."],
    3: ["That is it.", "Keep it simple.", "Give it time."],
    4: ["It really does work.", "You can do this.", "Start small, stay consistent."],
    5: ["Keep going, it gets easier.", "That is the whole trick.", "Notice how simple that was."],
    6: ["You will see the difference quickly.", "It is easier than it looks.", "Give it a try this week."],
    7: [
        "Give it one honest week and see.",
        "Try it today and see what changes.",
        "It goes faster than you would think.",
    ],
    8: [
        "Do this for a month and look back.",
        "Start today, and you will thank yourself later.",
        "It is small, but it changes a lot.",
    ],
}
RECAP_LINE = "So that covers {t}."

# ---------------------------------------------------------------- call to action, longest first

CALLS_TO_ACTION: dict[Platform, list[str]] = {
    Platform.TIKTOK: [
        "Follow for part two, and tell me in the comments how it goes for you.",
        "Follow for part two and tell me how it goes.",
        "Follow for part two.",
        "Follow me.",
    ],
    Platform.YOUTUBE_SHORTS: [
        "Subscribe for more quick ideas like this one, and try it today.",
        "Subscribe for more quick ideas like this.",
        "Subscribe for more.",
        "Subscribe now.",
    ],
    Platform.INSTAGRAM_REELS: [
        "Save this reel for later and share it with a friend who needs it.",
        "Save this and share it with a friend.",
        "Save this for later.",
        "Save this.",
    ],
    Platform.YOUTUBE: [
        "If this helped, like the video, subscribe, and I will see you in the next one.",
        "Like and subscribe for the next one.",
        "Like and subscribe.",
        "Please subscribe.",
    ],
    Platform.LINKEDIN: [
        "What has your experience been? Share your thoughts in the comments, and follow for more.",
        "What has your experience been? Tell me in the comments.",
        "What has your experience been?",
        "Your thoughts?",
    ],
}
